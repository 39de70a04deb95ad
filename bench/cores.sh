# Sourced by the benchmarks: CORES = the first two CPUs this process may run on (the
# same one twice on a one-CPU machine), for runs pinned with taskset -c.
cores=()
IFS=, read -ra _parts <<<"$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)"
for _p in "${_parts[@]}"; do
    if [[ $_p == *-* ]]; then
        for ((_c = ${_p%-*}; _c <= ${_p#*-} && ${#cores[@]} < 2; _c++)); do cores+=("$_c"); done
    else
        cores+=("$_p")
    fi
done
cores=("${cores[@]:0:2}")
[ ${#cores[@]} = 2 ] || cores=("${cores[0]:-0}" "${cores[0]:-0}")
unset _parts _p _c
