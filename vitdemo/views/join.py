"""How students reach the app: the server's address on the local network, the join URL and its QR code.

Pure functions; the Present page passes in Streamlit's `server.port`, `server.baseUrlPath` and `server.address`.
"""

from __future__ import annotations

import ipaddress
import socket
from html import escape

import segno

# A private address that is never contacted: connect() on a UDP socket only asks the kernel which source
# address it would use for that route, without sending a packet.
PROBE = ("10.254.254.254", 1)
QR_DARK, QR_LIGHT = "#0e1117", "#ffffff"  # the theme's background on white: dark modules on light, as scanners want
QR_BORDER = 4  # modules of quiet zone, as the QR standard asks


def _is_loopback_or_unset(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host in ("", "localhost")
    return address.is_loopback or address.is_unspecified


def lan_address(probe: tuple[str, int] = PROBE) -> str:
    """This machine's address on the local network (the source address of its default route), without sending
    anything; the host name when there is no such route (then the network's DNS or mDNS may still know it)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(probe)
            found = str(s.getsockname()[0])
        if not _is_loopback_or_unset(found):
            return found
    except OSError:
        pass
    return socket.gethostname()


def join_url(host: str, port: int, base_path: str = "") -> str:
    """'http://192.168.1.20:8501/' (IPv6 in brackets, Streamlit's server.baseUrlPath appended)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    path = "/".join(part for part in base_path.split("/") if part)
    return f"http://{host}:{int(port)}/" + (f"{path}/" if path else "")


def breakable_url(url: str) -> str:
    """`url` as HTML that a narrow box breaks after the scheme, before the port and after a slash, never
    inside the address or the port."""
    scheme, _, rest = url.partition("://")
    host, colon, tail = rest.rpartition(":")
    if not colon or "]" in tail:  # no port
        host, tail = rest, ""
    port = f"<wbr>:{escape(tail)}".replace("/", "/<wbr>") if colon and tail else ""
    return f"{escape(scheme)}://<wbr>{escape(host)}{port}"


def bind_warning(server_address: str | None) -> str | None:
    """A sentence when the server listens on this machine only (students' devices cannot reach it), else None.
    Streamlit's default (no server.address) listens on every interface."""
    if not server_address:
        return None
    try:
        local = ipaddress.ip_address(server_address).is_loopback
    except ValueError:
        local = server_address == "localhost"
    if not local:
        return None
    return f"Only this computer can open the app (it listens on {server_address}): restart it with `--server.address 0.0.0.0`."


def qr_code(url: str) -> segno.QRCode:
    """The QR code of `url`, error correction M (a projector's glare or a dirty screen still scans)."""
    return segno.make(url, error="m", micro=False)


def qr_svg(url: str) -> str:
    """An inline <svg> of the QR code that scales to its box (a viewBox, no fixed size)."""
    return qr_code(url).svg_inline(
        scale=1, border=QR_BORDER, dark=QR_DARK, light=QR_LIGHT, omitsize=True, title=f"QR code for {url}"
    )
