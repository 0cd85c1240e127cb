"""A TCP proxy that damages a serial line on purpose, to prove the flasher never lies.

Between the host and the emulator's TCP serial port it flips bits, drops and
duplicates bytes in both directions, at seeded per-byte rates, and can cut the
connection after a number of host-to-board bytes: the faults of a long USB
cable, a noisy level shifter or a board reset mid-transfer, reproducibly.
Every fault is counted by kind and direction, so a test or `make bench` can say
how many faults a flash survived.

    with FaultProxy("127.0.0.1", emu.port, seed=1, bit_flip_rate=1e-4, drop_rate=1e-4,
                    dup_rate=1e-4) as proxy:
        Flasher(open_port(proxy.url)).flash(image)
    proxy.faults   # {"to_board": {"flip": 3, "drop": 5, "dup": 4}, "to_host": {...}, "cuts": 0}

run_fault_campaign() flashes one image many times through such proxies and
checks every reported success independently over a clean connection.
"""

from __future__ import annotations

import random
import selectors
import socket
import threading
import time
import zlib
from pathlib import Path

from codegen.errors import BoardError

LOCALHOST = "127.0.0.1"
DIRECTIONS = ("to_board", "to_host")
KINDS = ("flip", "drop", "dup")
#: Bytes moved per socket read.
_CHUNK_BYTES = 4096
#: How often the proxy thread looks at its stop flag (seconds).
_POLL_SECONDS = 0.05


Rate = float | tuple[float, float]


def _per_direction(name: str, rate: Rate) -> tuple[float, float]:
    pair = tuple(rate) if isinstance(rate, (tuple, list)) else (rate, rate)
    if len(pair) != len(DIRECTIONS) or not all(0.0 <= r <= 1.0 for r in pair):
        raise ValueError(f"{name} must be in 0..1 or a (to_board, to_host) pair of such, got {rate}")
    return pair


class _Damage:
    """Per-direction fault decisions from its own seeded stream, so each direction's
    faults depend only on the bytes that went that way."""

    def __init__(self, rng: random.Random, flip: float, drop: float, dup: float, counts: dict[str, int]):
        self.rng, self.flip, self.drop, self.dup, self.counts = rng, flip, drop, dup, counts

    def apply(self, data: bytes) -> bytes:
        out = bytearray()
        rng = self.rng
        for byte in data:
            if rng.random() < self.flip:
                byte ^= 1 << rng.randrange(8)
                self.counts["flip"] += 1
            if rng.random() < self.drop:
                self.counts["drop"] += 1
                continue
            out.append(byte)
            if rng.random() < self.dup:
                self.counts["dup"] += 1
                out.append(byte)
        return bytes(out)


class FaultProxy:
    """Listens on 127.0.0.1 (`.port`, `.url`); each client gets its own connection to the target.

    Rates are per byte: bit_flip_rate (one random bit of the byte flipped),
    drop_rate, dup_rate (the byte sent twice); each a number for both directions
    or a (to_board, to_host) pair, since answers are far shorter than requests
    and need a higher rate to be hit as often. cut_after_bytes: after that many
    bytes from host to board, both sides of that connection are closed (once per
    proxy; later clients pass with the same rates and no cut).
    """

    def __init__(self, target_host: str, target_port: int, seed: int = 0, bit_flip_rate: Rate = 0.0,
                 drop_rate: Rate = 0.0, dup_rate: Rate = 0.0, cut_after_bytes: int | None = None):
        rates = {name: _per_direction(name, rate) for name, rate in
                 (("bit_flip_rate", bit_flip_rate), ("drop_rate", drop_rate), ("dup_rate", dup_rate))}
        self.target = (target_host, target_port)
        self.cut_after_bytes = cut_after_bytes
        self.counts = {d: dict.fromkeys(KINDS, 0) for d in DIRECTIONS}
        self.forwarded = dict.fromkeys(DIRECTIONS, 0)
        self.cuts = 0
        seeds = random.Random(seed)
        self._damage = {d: _Damage(random.Random(seeds.getrandbits(64)), rates["bit_flip_rate"][i],
                                   rates["drop_rate"][i], rates["dup_rate"][i], self.counts[d])
                        for i, d in enumerate(DIRECTIONS)}
        self._listener = socket.create_server((LOCALHOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"socket://{LOCALHOST}:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"faultproxy-{self.port}", daemon=True)
        self._pair: tuple[socket.socket, socket.socket] | None = None  # (host side, board side)

    @property
    def faults(self) -> dict:
        """Faults injected so far, by direction and kind, and the cuts."""
        return {**{d: dict(c) for d, c in self.counts.items()}, "cuts": self.cuts}

    @property
    def total_faults(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values()) + self.cuts

    # ---- lifecycle ------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._drop_pair()
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the pump ---------------------------------------------------------------

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(_POLL_SECONDS):
                    if key.fileobj is self._listener:
                        self._accept(sel)
                    elif self._pair is not None and key.fileobj in self._pair:  # not one dropped meanwhile
                        self._pump(sel, key.fileobj)

    def _accept(self, sel: selectors.BaseSelector) -> None:
        client, _ = self._listener.accept()
        self._drop_pair(sel)
        try:
            board = socket.create_connection(self.target)
        except OSError:
            client.close()  # the host sees a closed line, as with no board behind it
            return
        for sock in (client, board):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sel.register(sock, selectors.EVENT_READ)
        self._pair = (client, board)

    def _pump(self, sel: selectors.BaseSelector, source: socket.socket) -> None:
        client, board = self._pair
        direction, sink = ("to_board", board) if source is client else ("to_host", client)
        try:
            data = source.recv(_CHUNK_BYTES)
        except OSError:
            data = b""
        if not data:
            self._drop_pair(sel)
            return
        cut = False
        if direction == "to_board" and self.cut_after_bytes is not None and self.cuts == 0:
            room = self.cut_after_bytes - self.forwarded["to_board"]
            cut = len(data) >= room
            data = data[:max(room, 0)]
        self.forwarded[direction] += len(data)
        try:
            sink.sendall(self._damage[direction].apply(data))
        except OSError:
            self._drop_pair(sel)
            return
        if cut:
            self.cuts += 1
            self._drop_pair(sel)

    def _drop_pair(self, sel: selectors.BaseSelector | None = None) -> None:
        if self._pair is None:
            return
        for sock in self._pair:
            if sel is not None:
                sel.unregister(sock)
            sock.close()
        self._pair = None


# ---- the campaign -----------------------------------------------------------------

#: Default per-byte fault rates of a campaign, (to board, to host): about one request
#: (1 KiB block) in four and one answer (~16 bytes) in five is damaged in some way.
CAMPAIGN_RATES = {"bit_flip_rate": (1e-4, 5e-3), "drop_rate": (1e-4, 5e-3), "dup_rate": (1e-4, 5e-3)}
#: Campaign flashes answer faster than a real board needs; a lost frame costs this much.
CAMPAIGN_TIMEOUT = 0.25
CAMPAIGN_RETRIES = 10


def run_fault_campaign(bootloader_elf: Path, image: bytes | Path, *, trials: int = 6, cut_trials: int = 1,
                       seed: int = 0, rates: dict[str, Rate] | None = None, timeout: float = CAMPAIGN_TIMEOUT,
                       retries: int = CAMPAIGN_RETRIES) -> dict:
    """Flash `image` `trials` times through FaultProxy onto one emulated board running
    `bootloader_elf`; the first `cut_trials` also cut the line halfway through the image.

    Trials alternate between the image and its bitwise inverse, so the board never
    already holds what a trial sends. After every trial the board is asked over a
    clean connection: a reported success must read back zlib.crc32 of what was sent
    (else it counts as `wrong_image`, which must stay 0); after a failure a clean
    flash must succeed (`recovered`; FlashError if it does not). Returns the counts,
    the faults injected by direction and kind, how many of them the verified flashes
    survived, the resends, and the failures' messages.
    """
    from host.emulator import Emulator
    from host.flasher import Flasher
    from host.image import as_image
    from host.transport import open_port

    def flasher(port):
        return Flasher(port, timeout=timeout, retries=retries, progress=False)

    rates = {**CAMPAIGN_RATES, **(rates or {})}
    result = {"trials": trials, "succeeded": 0, "failed": 0, "wrong_image": 0, "recovered": 0,
              "faults": {**{d: dict.fromkeys(KINDS, 0) for d in DIRECTIONS}, "cuts": 0},
              "faults_injected": 0, "faults_survived": 0, "retries": 0, "errors": []}
    started = time.monotonic()
    with Emulator(Path(bootloader_elf)) as emu:
        with open_port(emu.url) as port:
            clean = flasher(port)
            info = clean.sync()
            data = as_image(image, info.app_base, info.app_max_bytes).data
            variants = (data, bytes(b ^ 0xFF for b in data))
            clean.flash(variants[1], boot=False)
        for trial in range(trials):
            sent = variants[trial % 2]
            cut = len(sent) // 2 if trial < cut_trials else None
            with FaultProxy(LOCALHOST, emu.port, seed=seed + trial, cut_after_bytes=cut, **rates) as proxy:
                with open_port(proxy.url) as port:
                    faulty = flasher(port)
                    try:
                        faulty.flash(sent, boot=False)
                        verified = True
                    except BoardError as err:
                        verified = False
                        result["errors"].append(str(err))
            for direction in DIRECTIONS:
                for kind in KINDS:
                    result["faults"][direction][kind] += proxy.counts[direction][kind]
            result["faults"]["cuts"] += proxy.cuts
            result["faults_injected"] += proxy.total_faults
            result["retries"] += faulty.stats.retries
            with open_port(emu.url) as port:
                clean = flasher(port)
                if verified:
                    result["succeeded"] += 1
                    result["faults_survived"] += proxy.total_faults
                    clean.sync()
                    result["wrong_image"] += clean.crc(0, len(sent)) != zlib.crc32(sent)
                else:
                    result["failed"] += 1
                    clean.flash(sent, boot=False)
                    result["recovered"] += 1
    result["elapsed_s"] = round(time.monotonic() - started, 2)
    return result


def campaign_summary(result: dict) -> str:
    """One line for logs and the bench."""
    faults = result["faults"]
    by_kind = ", ".join(f"{kind} {faults['to_board'][kind]}/{faults['to_host'][kind]}" for kind in KINDS)
    return (f"fault campaign: {result['trials']} flashes, {result['succeeded']} verified, {result['failed']} failed "
            f"cleanly ({result['recovered']} recovered), {result['wrong_image']} wrong images; "
            f"{result['faults_injected']} faults injected (to board/to host: {by_kind}; cuts {faults['cuts']}), "
            f"{result['faults_survived']} survived by verified flashes, {result['retries']} resends, "
            f"{result['elapsed_s']} s")
