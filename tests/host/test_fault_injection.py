"""FaultProxy on its own (against a TCP echo server), then flashing the real bootloader through it."""
from __future__ import annotations

import random
import socket
import threading

import pytest
from board_images import BENCH_LAST, bench_app_elf, bootloader_elf, kws_gen_dir  # noqa: F401
from test_emulator import uart_until

from codegen.errors import FlashError
from host.emulator import Emulator
from host.faultproxy import DIRECTIONS, KINDS, FaultProxy, campaign_summary, run_fault_campaign
from host.flasher import Flasher
from host.transport import open_port

ECHO_BYTES = 20_000


@pytest.fixture
def echo_port():
    """A TCP echo server on a free port, one client at a time, until the test ends."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()
    received = []

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.1)
                while not stop.is_set():
                    try:
                        data = conn.recv(4096)
                        if not data:
                            break
                        received.append(data)
                        conn.sendall(data)
                    except TimeoutError:
                        continue
                    except OSError:  # the proxy cut or reset the line
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        stop.set()
        thread.join()
        server.close()


def _exchange(proxy: FaultProxy, data: bytes, expect: int) -> bytes:
    """Send data through the proxy and collect up to `expect` echoed bytes (or until the line goes quiet)."""
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.settimeout(0.5)
        sock.sendall(data)
        got = b""
        while len(got) < expect:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
        return got


def test_without_faults_the_proxy_is_transparent(echo_port):
    port, _ = echo_port
    data = random.Random(1).randbytes(ECHO_BYTES)
    with FaultProxy("127.0.0.1", port, seed=1) as proxy:
        assert _exchange(proxy, data, len(data)) == data
    assert proxy.total_faults == 0
    assert proxy.forwarded == {"to_board": len(data), "to_host": len(data)}


@pytest.mark.parametrize("kind, rates", [
    ("drop", {"drop_rate": 0.01}),
    ("dup", {"dup_rate": 0.01}),
    ("flip", {"bit_flip_rate": 0.01}),
])
def test_every_fault_is_counted_by_kind_and_direction(echo_port, kind, rates):
    port, _ = echo_port
    data = bytes(ECHO_BYTES)  # zeros: every flipped bit shows as a set bit
    with FaultProxy("127.0.0.1", port, seed=2, **rates) as proxy:
        got = _exchange(proxy, data, 2 * len(data))
    to_board, to_host = proxy.counts["to_board"][kind], proxy.counts["to_host"][kind]
    assert to_board > 100 and to_host > 100  # ~200 expected each way
    others = {k: v for d in proxy.counts.values() for k, v in d.items() if k != kind}
    assert set(others.values()) == {0}
    if kind == "drop":
        assert len(got) == len(data) - to_board - to_host
    elif kind == "dup":
        assert len(got) == len(data) + to_board + to_host
    else:
        # a bit flipped on the way out may be flipped back on the way in, never more than one per byte a way
        set_bits = sum(bin(b).count("1") for b in got)
        assert len(got) == len(data)
        assert to_board - to_host <= set_bits <= to_board + to_host and set_bits % 2 == (to_board + to_host) % 2


def test_the_same_seed_injects_the_same_faults(echo_port):
    port, _ = echo_port
    data = random.Random(3).randbytes(ECHO_BYTES)
    runs = []
    for _ in range(2):
        with FaultProxy("127.0.0.1", port, seed=3, bit_flip_rate=0.005, drop_rate=0.005, dup_rate=0.005) as proxy:
            runs.append((_exchange(proxy, data, len(data)), proxy.faults))
    assert runs[0] == runs[1]


def test_a_cut_closes_both_sides_once_then_clients_pass(echo_port):
    port, received = echo_port
    data = bytes(range(256)) * 40
    with FaultProxy("127.0.0.1", port, seed=4, cut_after_bytes=1000) as proxy:
        got = _exchange(proxy, data, len(data))
        assert len(b"".join(received)) <= 1000 and len(got) <= 1000
        assert proxy.forwarded["to_board"] == 1000
        assert proxy.faults["cuts"] == 1
        assert _exchange(proxy, data, len(data)) == data  # the next connection is not cut


def test_an_unreachable_target_closes_the_client():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        free_port = placeholder.getsockname()[1]
    with FaultProxy("127.0.0.1", free_port) as proxy:
        assert _exchange(proxy, b"hello", 5) == b""


def test_rates_are_checked():
    with pytest.raises(ValueError, match=r"drop_rate must be in 0..1 or a \(to_board, to_host\) pair of such, got 1.5"):
        FaultProxy("127.0.0.1", 1, drop_rate=1.5)
    with pytest.raises(ValueError, match=r"dup_rate .* got \(0.1, 0.2, 0.3\)"):
        FaultProxy("127.0.0.1", 1, dup_rate=(0.1, 0.2, 0.3))


# ---- the real bootloader behind the proxy -------------------------------------------

def test_flashing_through_faults_never_reports_a_wrong_image(bootloader_elf, bench_app_elf, capsys):
    """Bit flips, drops and duplicates both ways, one cut: every flash is verified or fails cleanly."""
    result = run_fault_campaign(bootloader_elf, bench_app_elf, trials=5, cut_trials=1, seed=10)
    with capsys.disabled():
        print(f"\n  {campaign_summary(result)}")
    assert result["wrong_image"] == 0
    assert result["succeeded"] + result["failed"] == result["trials"]
    assert result["recovered"] == result["failed"] >= 1  # the cut trial cannot succeed
    assert result["succeeded"] >= 3 and result["faults_survived"] > 0
    assert all(result["faults"][d][k] > 0 for d in DIRECTIONS for k in KINDS)
    assert result["faults"]["cuts"] == 1


def test_heavy_faults_fail_cleanly_and_never_lie(bootloader_elf, bench_app_elf, capsys):
    """At 1 fault in ~200 bytes most 1 KiB frames are damaged: retries run out, and that must show."""
    result = run_fault_campaign(bootloader_elf, bench_app_elf, trials=2, cut_trials=0, seed=20, retries=2,
                                rates={"bit_flip_rate": 2e-3, "drop_rate": 2e-3, "dup_rate": 2e-3})
    with capsys.disabled():
        print(f"\n  heavy {campaign_summary(result)}")
    assert result["wrong_image"] == 0 and result["failed"] >= 1
    assert result["recovered"] == result["failed"]
    assert all(error.startswith(("DATA block", "BEGIN", "END", "CRC", "no bootloader")) for error in result["errors"])


def test_a_cut_mid_transfer_names_the_block_and_the_board_recovers(bootloader_elf, bench_app_elf):
    with Emulator(bootloader_elf) as emu:
        with FaultProxy("127.0.0.1", emu.port, cut_after_bytes=20_000) as proxy, open_port(proxy.url) as port:
            with pytest.raises(FlashError, match=r"^DATA block 1\d at offset 0x[0-9a-f]+: lost the connection to "
                                                 r"socket://127.0.0.1:\d+ while (sending|receiving): .+$"):
                Flasher(port, progress=False).flash(bench_app_elf)
        with open_port(emu.url) as port:
            Flasher(port, progress=False).flash(bench_app_elf)
            assert BENCH_LAST in uart_until(port, BENCH_LAST)
