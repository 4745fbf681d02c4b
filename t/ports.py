"""A free 127.0.0.1 port for an httpd the tests or benches start."""
import random
import socket

_GIVEN = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port from below the kernel's ephemeral range: a port the kernel
    picks for bind(0) is one it may also give any outbound connection (the
    sink's clients, the load generators, apidestd's deliveries) between this
    check and httpd's own bind, which then fails."""
    low = _ephemeral_low()
    if low > 11000:
        for _ in range(200):
            port = random.randrange(10000, low)
            if port not in _GIVEN and _bindable(port):
                _GIVEN.add(port)
                return port
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
