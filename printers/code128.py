"""Code 128 encoding to modules, with the shortest choice of code sets.

Why our own encoder: the label must fit the widest possible module on 58 mm paper, so the
symbol has to be as short as Code 128 allows. python-barcode switches code sets greedily (and
starts in set C whatever the text), which costs symbols on tracking numbers such as
``SF1385628716739``; a small dynamic programme over the three code sets gives the minimum.
The output is the module pattern only; the renderer decides the dot width of a module.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bar/space widths of symbol values 0..105 (ISO/IEC 15417 table 1), then the stop pattern.
_WIDTHS = (
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
    "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
    "221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
    "212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
    "231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
    "231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
    "314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
    "112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
    "111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
    "114131", "311141", "411131", "211412", "211214", "211232",
)
_STOP_WIDTHS = "2331112"
_START = {"A": 103, "B": 104, "C": 105}
_SWITCH = {"A": 101, "B": 100, "C": 99}  # the value that switches *to* a set (same from any set)
QUIET_MODULES = 10  # ISO minimum each side; the renderer may add more


class Code128Error(ValueError):
    """Text that Code 128 cannot carry (only ASCII 0..127)."""


@dataclass(frozen=True)
class Code128:
    text: str
    values: tuple[int, ...]  # start, data and switch values, check value, stop (106)
    sets: str  # the code set of each data value, for tests and diagnostics

    @property
    def modules(self) -> str:
        """'1' for a dark module, '0' for a light one, without quiet zones."""
        out: list[str] = []
        for v in self.values:
            widths = _STOP_WIDTHS if v == 106 else _WIDTHS[v]
            for i, w in enumerate(widths):
                out.append(("1" if i % 2 == 0 else "0") * int(w))
        return "".join(out)

    @property
    def width_modules(self) -> int:
        return 11 * (len(self.values) - 1) + 13


def _fits(ch: str, code_set: str) -> bool:
    o = ord(ch)
    if code_set == "A":
        return o < 96
    if code_set == "B":
        return 32 <= o < 128
    return False


def _value(ch: str, code_set: str) -> int:
    o = ord(ch)
    if code_set == "A" and o < 32:
        return o + 64
    return o - 32


def encode(text: str) -> Code128:
    """Encode ``text`` with the fewest symbols (ties prefer set B, the readable one)."""
    if not text:
        raise Code128Error("nothing to encode")
    bad = [ch for ch in text if ord(ch) > 127]
    if bad:
        raise Code128Error(f"Code 128 carries ASCII only, not {bad[0]!r}")
    n = len(text)
    sets = ("B", "C", "A")  # order = tie preference
    inf = 10**9
    # cost[i][s]: symbols needed for text[i:] when the current set is s.
    cost = [dict.fromkeys(sets, inf) for _ in range(n + 1)]
    step: list[dict[str, tuple[str, int]]] = [{} for _ in range(n + 1)]  # s -> (set used, chars)
    for s in sets:
        cost[n][s] = 0

    def consume(i: int, s: str) -> tuple[int, int]:
        if s == "C":
            if i + 1 < n and text[i].isdigit() and text[i + 1].isdigit():
                return 1 + cost[i + 2]["C"], 2
            return inf, 0
        if _fits(text[i], s):
            return 1 + cost[i + 1][s], 1
        return inf, 0

    for i in range(n - 1, -1, -1):
        stay = {s: consume(i, s) for s in sets}
        for s in sets:
            best, how = stay[s][0], (s, stay[s][1])
            for t in sets:
                if t != s and stay[t][0] + 1 < best:
                    best, how = stay[t][0] + 1, (t, stay[t][1])
            cost[i][s], step[i][s] = best, how

    start = min(sets, key=lambda s: cost[0][s] if step[0][s][0] == s else inf)
    values = [_START[start]]
    used: list[str] = []
    current, i = start, 0
    while i < n:
        target, count = step[i][current]
        if target != current:
            values.append(_SWITCH[target])
            current = target
        if target == "C":
            values.append(int(text[i:i + 2]))
        else:
            values.append(_value(text[i], target))
        used.append(target)
        i += count
    check = (values[0] + sum(pos * v for pos, v in enumerate(values[1:], start=1))) % 103
    values += [check, 106]
    return Code128(text=text, values=tuple(values), sets="".join(used))
