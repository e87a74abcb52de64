"""Pod and node addresses for one simulator process.

One ``IpAllocator`` serves every cluster of a simulator, so no two of its pods or nodes
ever share an address, whichever region they are in. Pods get loopback addresses
outside 127.0.0.0/16 (resident pods bind a WebSocket on theirs); nodes live in
127.255.0.0/16, apart from the pods.
"""

from __future__ import annotations

_POD_BLOCK = 256 * 254  # addresses in one 127.<a>.0.0/16 block (last octet 1..254)


def _octets(ip: str) -> tuple[int, int, int, int] | None:
    try:
        first, second, third, fourth = (int(part) for part in ip.split("."))
    except ValueError:
        return None
    return first, second, third, fourth


class IpAllocator:
    def __init__(self, pod_block: int = 0) -> None:
        """``pod_block`` picks the /16 the pod addresses start in: 127.<1 + block % 254>.

        Resident pods bind their address, so two simulators on one machine (tests, a
        benchmark, ``meridian up``) must not hand out the same ones. Each passes its base
        port, which is unique among running kubesims because the port must be free.
        """
        self._next_pod = (pod_block % 254) * _POD_BLOCK
        self._last_node = 0

    def pod_ip(self) -> str:
        n = self._next_pod
        self._next_pod += 1
        return f"127.{1 + n // _POD_BLOCK}.{(n // 254) % 256}.{1 + n % 254}"

    def reserve_pod_ip(self, ip: str) -> None:
        """Never hand out ``ip``: a restored pod holds it."""
        octets = _octets(ip)
        if octets is None:
            return
        first, a, b, c = octets
        if first != 127 or a < 1 or not 1 <= c <= 254:
            return
        n = (a - 1) * _POD_BLOCK + b * 254 + (c - 1)
        self._next_pod = max(self._next_pod, n + 1)

    def node_ip(self) -> str:
        self._last_node += 1
        n = self._last_node
        return f"127.255.{(n // 254) % 256}.{1 + n % 254}"

    def reserve_node_ip(self, ip: str) -> None:
        """Never hand out ``ip``: a restored node holds it."""
        octets = _octets(ip)
        if octets is None:
            return
        first, second, b, c = octets
        if first != 127 or second != 255 or not 1 <= c <= 254:
            return
        self._last_node = max(self._last_node, b * 254 + (c - 1))
