"""CPU time of the machine's processes, read from ``/proc``: what the benchmarks divide by the work done."""
import os

TICK = os.sysconf("SC_CLK_TCK")


def processes():
    """``(pid, command name, session id, CPU seconds so far)`` of every process still running (user and
    system time; a process that ended takes its time with it)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stream:
                comm, fields = stream.read().rsplit(")", 1)
        except OSError:  # ended meanwhile
            continue
        fields = fields.split()
        yield int(entry), comm.split("(", 1)[1], int(fields[3]), (int(fields[11]) + int(fields[12])) / TICK


def broker_cpu():
    """CPU seconds used so far by the machine's RabbitMQ (every ``beam.smp``)."""
    return sum(cpu for _pid, name, _session, cpu in processes() if name == "beam.smp")
