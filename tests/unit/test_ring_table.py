"""The ring table is the one description of the rings: each row has its config section, its
ends are engine roles, and an engine started by the supervisor has exactly these rings, each
with its producer and consumer registered by the role the table names."""
import os

import msgspec
import numpy as np

from engine.config import EngineConfig, RingsConfig
from engine.control import ROLES
from engine.records import FILL_DTYPE, MD_DTYPE, ORDER_DTYPE
from engine.ring.table import FILLS, MD, ORDERS, RINGS
from engine.shm_admin import RING_NAMES


def test_every_ring_has_its_config_section_and_engine_roles_at_its_ends():
    assert [s.name for s in RINGS] == [f.name for f in msgspec.structs.fields(RingsConfig)]
    assert RING_NAMES == tuple(s.name for s in RINGS)
    for spec in RINGS:
        assert spec.producer in ROLES and spec.consumer in ROLES
        assert spec.producer != spec.consumer
        assert spec.config(EngineConfig()).capacity >= 2
    # the pipeline: feed -> quoter -> sender -> quoter
    assert (MD.producer, MD.consumer, MD.dtype) == ("feed", "quoter", MD_DTYPE)
    assert (ORDERS.producer, ORDERS.consumer, ORDERS.dtype) == ("quoter", "sender", ORDER_DTYPE)
    assert (FILLS.producer, FILLS.consumer, FILLS.dtype) == ("sender", "quoter", FILL_DTYPE)


def test_a_spec_opens_the_ring_its_config_describes(instance):
    from engine.config import RingConfig
    cfg = EngineConfig(instance=instance, rings=RingsConfig(md=RingConfig(capacity=64,
                                                                          policy="drop")))
    producer = MD.open(cfg, "producer")
    consumer = MD.open(cfg, "consumer")
    try:
        assert producer.capacity == 64 and producer.dtype == MD_DTYPE
        assert consumer.consumer_pid() == os.getpid()
        rec = np.zeros(1, MD_DTYPE)
        rec["update_id"] = 42
        assert producer.push(rec)
        assert consumer.pop_many()["update_id"].tolist() == [42]
    finally:
        consumer.close()
        producer.close()
