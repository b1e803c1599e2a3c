#!/usr/bin/env bash
# Check a box for low-latency quoting: isolated cores, nohz_full, IRQ affinity, frequency
# governor, transparent huge pages, RT throttling. Reads only; prints what to change.
set -u
echo "cores: $(nproc)   isolated: $(cat /sys/devices/system/cpu/isolated 2>/dev/null || echo none)"
echo "nohz_full: $(cat /sys/devices/system/cpu/nohz_full 2>/dev/null || echo none)"
grep -o 'isolcpus=[^ ]*\|nohz_full=[^ ]*\|rcu_nocbs=[^ ]*' /proc/cmdline || \
  echo "hint: boot with isolcpus=<hot cores> nohz_full=<same> rcu_nocbs=<same>"
gov=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null || echo n/a)
echo "cpufreq governor: $gov"; [ "$gov" = performance ] || [ "$gov" = n/a ] || \
  echo "hint: cpupower frequency-set -g performance"
echo "THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
echo "RT throttling: $(cat /proc/sys/kernel/sched_rt_runtime_us) us per $(cat /proc/sys/kernel/sched_rt_period_us) us"
iso=$(cat /sys/devices/system/cpu/isolated 2>/dev/null)
if [ -n "$iso" ]; then
  echo "IRQs allowed on isolated cores (should be none besides per-cpu timers):"
  for f in /proc/irq/*/smp_affinity_list; do
    list=$(cat "$f"); echo "  $(basename "$(dirname "$f")"): $list"
  done | grep -E " ($iso)$" || echo "  none"
fi
