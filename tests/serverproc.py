"""The real smserve binary started for the Python test drivers (matrix/run_matrix.py,
conformance/replay.py): `smserve serve` on a free loopback port, tried again on
another port when a parallel job takes the one found free before smserve binds
it, with its output kept in a temporary file.
"""
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortTaken(Exception):
    """Another process bound the port between free_port() and smserve's bind."""


class Server:
    """One `smserve serve` (cmd: the binary, after any wrapper) for the model at
    model_dir, on a free loopback port, with base_env (default os.environ), a
    few connection threads and no metrics interval, then extra_env on top (it may
    override those)."""

    def __init__(self, cmd, model_dir, extra_env, timeout, base_env=None):
        self.timeout = timeout
        self.port = free_port()
        self.env = dict(os.environ if base_env is None else base_env, SM_MODEL_DIR=model_dir,
                        SAGEMAKER_BIND_TO_PORT=str(self.port), SMSERVE_CONNECTIONS="16",
                        SMSERVE_METRICS_INTERVAL="0")
        self.env.update(extra_env)
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(list(cmd) + ["serve"], env=self.env, stdout=self.log,
                                     stderr=self.log)

    def text(self):
        """Its output so far."""
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def wait_ready(self):
        """None once /ping answers 200, or (exit status, output) when it exited at
        start. Raises PortTaken, or RuntimeError after `timeout` seconds."""
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                text = self.text()
                if "Address already in use" in text:
                    raise PortTaken(self.port)
                return self.proc.returncode, text
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/ping" % self.port,
                                            timeout=2) as r:
                    if r.status == 200:
                        return None
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("no /ping 200 within %d s" % self.timeout)
            time.sleep(0.02)

    def port_taken(self):
        """Whether it has exited because its port was taken: then the /ping that
        answered came from another job's server on that port."""
        return self.proc.poll() == 3 and "Address already in use" in self.text()

    def stop(self):
        """SIGTERM and a wait: None, or why the stop was not clean."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "still running %d s after SIGTERM" % self.timeout
        return None if rc == 0 else "exited %d after SIGTERM: %s" % (rc, self.failure_text())

    def failure_text(self):
        """What says why it failed: a sanitizer's report whole (its allocation
        stacks are the point), else the last lines of the output."""
        text = self.text()
        at = text.find("==ERROR: ")
        if at < 0:
            at = text.find("runtime error: ")
        return text[max(0, text.rfind("\n", 0, at) + 1):][:8000] if at >= 0 else text[-300:]


def rss_kib(pid):
    """The resident set of process pid, in KiB (VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(cmd, model_dir, extra_env, timeout, base_env=None, attempts=5):
    """A Server (see its arguments) past its start: (server, None) once /ping
    answers 200, or (server, (exit status, output)) when it exited at start. A
    port taken before smserve binds it is tried again on another, up to
    `attempts` times (then PortTaken)."""
    for attempt in range(attempts):
        srv = Server(cmd, model_dir, extra_env, timeout, base_env)
        try:
            return srv, srv.wait_ready()
        except PortTaken:
            srv.stop()
            if attempt == attempts - 1:
                raise
        except Exception:
            srv.stop()
            raise
