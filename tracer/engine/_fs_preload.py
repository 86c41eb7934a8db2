"""Imported only by multiprocessing's forkserver (it is first in its preload list): the
forkserver, and every process it forks (process actors, pool workers, the Manager), ignore
SIGTERM and SIGHUP. Sent to the whole process group (by ``timeout``, a closing terminal),
those signals must reach only the runner, which ends the run as on Ctrl-C: a forkserver killed
by one would make every child it forked look dead to the runner (exit status 255)."""

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
