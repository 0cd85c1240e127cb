"""Pin constraints for a synthesized top: its clock on the board's clock pin, every other port bit on a board pin.

The pins come from an amaranth-boards platform (its resources and connectors), so
they are real, bonded user I/O of the package. Constraining every port keeps the
placement honest: no port is left floating, and nothing is optimized away.
"""
from __future__ import annotations

from amaranth.build import Platform

from codegen.errors import ResourceError
from hw.devices import Device

CLOCK_PORT = "clk"  # what amaranth.back.rtlil.convert calls the sync domain's clock


def board_pins(platform: Platform) -> list[str]:
    """The board's user pins, its default clock pin first, each once."""
    def walk(ios):
        for io in ios:
            if hasattr(io, "ios"):  # a Subsignal
                yield from walk(io.ios)
            elif hasattr(io, "p"):  # DiffPairs
                yield from io.p.names
                yield from io.n.names
            else:
                yield from io.names
    clock = platform.resources[(platform.default_clk, 0)]
    names = list(walk(clock.ios)) + [n for r in platform.resources.values() for n in walk(r.ios)]
    names += [n for c in platform.connectors.values() for n in c.mapping.values()]
    # "conn_0:1" names a connector's pin, which the connector's own mapping lists
    return list(dict.fromkeys(n for n in names if ":" not in n and n != "-"))


def port_bits(ports: dict) -> list[str]:
    """nextpnr's names of a Yosys JSON module's port bits: ``name`` for one bit, ``name[i]`` for a vector."""
    return [name if len(p["bits"]) == 1 else f"{name}[{i}]" for name, p in ports.items() for i in range(len(p["bits"]))]


def constraints(dev: Device, ports: dict) -> str:
    """A PCF (iCE40) or LPF (ECP5) placing ``ports`` (Yosys JSON) on ``dev``'s board pins."""
    pins = board_pins(dev.board())
    bits = port_bits(ports)
    if CLOCK_PORT not in bits:
        raise ResourceError(f"{dev.name}: the top has no {CLOCK_PORT!r} port (a clocked 'sync' domain is needed)")
    bits.remove(CLOCK_PORT)
    bits.insert(0, CLOCK_PORT)
    if len(bits) > len(pins):
        raise ResourceError(f"{dev.name}: the top has {len(bits)} I/O bits, the {dev.board.__name__} board "
                            f"has {len(pins)} pins")
    if dev.family == "ice40":
        return "".join(f"set_io {bit} {pin}\n" for bit, pin in zip(bits, pins))
    return "".join(f'LOCATE COMP "{bit}" SITE "{pin}";\nIOBUF PORT "{bit}" IO_TYPE=LVCMOS33;\n'
                   for bit, pin in zip(bits, pins))
