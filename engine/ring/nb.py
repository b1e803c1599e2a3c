"""The ring's numba face: the same C protocol as the Python face, callable from @njit code.

A ring is passed to numba as its header address (`ring.hdr`, an int) plus its slot array
(`ring.slots`, a structured numpy array). Producer:
    i = ring_claim(hdr)            # slot index, or -1 when full (counted)
    if i >= 0: slots[i]["bid_px"] = ...; ring_commit(hdr)
Consumer:
    n = ring_available(hdr)
    for k in range(n): rec = slots[ring_read_index(hdr, k)] ...
    ring_release(hdr, n)
"""
from engine.native import (  # noqa: F401  (re-exported names)
    nb_cpu_relax as cpu_relax,
    nb_fence as fence,
    nb_load_acquire as load_acquire,
    nb_now_ns as now_ns,
    nb_rdtsc as rdtsc,
    nb_ring_arm as ring_arm,
    nb_ring_available as ring_available,
    nb_ring_claim as ring_claim,
    nb_ring_commit as ring_commit,
    nb_ring_disarm as ring_disarm,
    nb_ring_park as ring_park,
    nb_ring_read_index as ring_read_index,
    nb_ring_release as ring_release,
    nb_ring_spin as ring_spin,
    nb_ring_try_claim as ring_try_claim,
    nb_store_release as store_release,
)
