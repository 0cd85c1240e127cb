"""Reading what nextpnr and Yosys leave behind: the report JSON, the log of a failed run, the netlist's cells."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from codegen.errors import ResourceError
from hw.devices import Device

# "Info:          ICESTORM_LC:  5306/ 5280   100%" in the log's "Device utilisation" table
_UTILISATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")
_NO_BELS = re.compile(r"no BELs remaining to implement cell type '(\w+)'")
# nextpnr's constant nets: an iCE40 SB_MAC16 used without registers has its clock tied to one, and nextpnr
# reports an fmax for it as for a clock
_CONSTANT_NET = "$PACKER_"


def read_report(dev: Device, path: Path) -> dict:
    """The figures of a nextpnr ``--report`` file: used cells of each kind and the worst clock's fmax."""
    report = json.loads(Path(path).read_text())
    used = {cell: u["used"] for cell, u in report["utilization"].items()}
    clocks = {clock: round(f["achieved"], 2) for clock, f in report["fmax"].items()
              if not clock.startswith(_CONSTANT_NET)}
    return {"luts": used[dev.lut_cell], "luts_available": report["utilization"][dev.lut_cell]["available"],
            "ram_blocks": used[dev.ram_cell], "dsps": used[dev.dsp_cell],
            "fmax_mhz": min(clocks.values()) if clocks else None, "fmax_per_clock": clocks, "utilization": used}


def count_ffs(dev: Device, netlist: dict) -> int:
    """Flip-flops in Yosys' JSON netlist: nextpnr packs iCE40 FFs into logic cells and reports none."""
    types = Counter(c["type"] for m in netlist["modules"].values() for c in m["cells"].values())
    return sum(n for t, n in types.items() if t.startswith(dev.ff_cell_prefix))


def raise_if_overfull(dev: Device, log: Path) -> None:
    """Raise a ResourceError if nextpnr's log shows a kind of cell the device has too few of."""
    for line in Path(log).read_text(errors="replace").splitlines():
        match = _UTILISATION.match(line)
        if match and int(match[2]) > int(match[3]):
            raise ResourceError(f"{dev.name}: the design needs {match[2]} {match[1]}, the {dev.part} has {match[3]}")
        match = _NO_BELS.search(line)
        if match:
            raise ResourceError(f"{dev.name}: the {dev.part} has too few {match[1]} for the design")
