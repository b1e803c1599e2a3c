#!/usr/bin/env bash
# Move every movable IRQ to the housekeeping cores (default: CPU 0). Run as root at boot,
# before the engine starts; pair with isolcpus= and irqbalance disabled.
set -eu
house=${1:-0}
for f in /proc/irq/*/smp_affinity_list; do
  echo "$house" > "$f" 2>/dev/null || true
done
echo "IRQs moved to CPU(s) $house (those the kernel refused are per-cpu)."
