"""What the packer reads (and the PDA speaks) for each verdict, in Chinese and English."""

from __future__ import annotations

from typing import Any

from scanedge.edge.domain.packing import Reason, ScanOutcome

FREEZE_WORDING = {
    "cancel": ("已取消", "cancelled"),
    "address_change": ("地址已变更", "address changed"),
    "hold": ("已暂停", "on hold"),
    "needs_decision": ("待主管决定", "waiting for a supervisor's decision"),
}

_TEMPLATES: dict[Reason, tuple[str, str]] = {
    Reason.ORDER_OPENED: ("订单 {order_id} 已打开,请扫描商品", "Order {order_id} opened: scan its items"),
    Reason.ORDER_ALREADY_OPEN: ("订单 {order_id} 已在本工位打开", "Order {order_id} is already open here"),
    Reason.ITEM_COUNTED: ("{name} {packed}/{qty}", "{name} {packed}/{qty}"),
    Reason.ORDER_COMPLETE: ("订单 {order_id} 已配齐,可以打印面单",
                            "Order {order_id} complete: ready to print"),
    Reason.ORDER_FROZEN: ("订单 {order_id} {freeze_zh},请停止操作",
                          "Order {order_id} is {freeze_en}: stop working on it"),
    Reason.NOT_IN_ORDER: ("错货!{code} 不属于订单 {order_id}",
                          "Wrong item: {code} is not in order {order_id}"),
    Reason.LINE_FULL: ("多扫!{name} 已够 {qty} 件", "Over-scan: {name} already has {qty}"),
    Reason.LOT_MISMATCH: ("批号错误:扫到 {lot},需要 {required_lot}",
                          "Wrong lot: scanned {lot}, order needs {required_lot}"),
    Reason.LOT_MISSING: ("需要批号 {required_lot}:请扫描带批号的条码",
                         "Lot {required_lot} required: scan the code that carries the lot"),
    Reason.EXPIRED: ("已过期(有效期 {expiry}),不能发货", "Expired ({expiry}): do not ship"),
    Reason.EXPIRES_TOO_SOON: ("效期不足:{expiry},需要不早于 {required_expiry}",
                              "Expires too soon: {expiry}, order needs {required_expiry} or later"),
    Reason.NO_OPEN_ORDER: ("请先扫描订单号或运单号", "Scan an order or tracking number first"),
    Reason.UNKNOWN_TRACKING: ("运单号 {code} 不属于任何已知订单", "Tracking number {code} matches no order"),
    Reason.BAD_CHECK_DIGIT: ("条码校验位错误,请重扫", "Bad check digit: scan again"),
    Reason.UNRECOGNIZED: ("无法识别的条码 {code}", "Unrecognized code {code}"),
    Reason.GIFT_CONFIRMED: ("赠品 {gift} 已确认", "Gift {gift} confirmed"),
    Reason.LABEL_VOID: ("订单 {order_id}:旧面单作废,请重新打印",
                        "Order {order_id}: the old label is void, print it again"),
    Reason.ALARM_PENDING: ("本工位有未确认的报警,请先确认报警再扫描",
                           "An alarm at this station is not acknowledged: acknowledge it first"),
    Reason.NOTE_PENDING: ("订单 {order_id} 有新备注:{note}(请阅读并点确认后再扫描)",
                          "Order {order_id} has a new note: {note} (read it and tap OK first)"),
    Reason.EMPTY: ("空扫描", "Empty scan"),
    Reason.PARCEL_FULL: ("放错包裹!{name} 不属于包裹 {parcel},请放入包裹 {wanted_in}",
                         "Wrong parcel: {name} does not go in parcel {parcel}; it goes in "
                         "parcel {wanted_in}"),
}


def freeze_message(order_id: str, reason: str) -> dict[str, str]:
    """The alarm a freeze raises ("订单 SO-1 已取消,请停止操作"), per reason."""
    zh, en = FREEZE_WORDING.get(reason, (reason, reason))
    tzh, ten = _TEMPLATES[Reason.ORDER_FROZEN]
    values = {"order_id": order_id, "freeze_zh": zh, "freeze_en": en}
    return {"zh": tzh.format_map(values), "en": ten.format_map(values)}


COMMAND_REJECTED = ("中心指令未通过验证,已拒绝:{kind} {order_id}({problem}),请通知主管",
                    "A hub command failed verification and was rejected: {kind} {order_id} "
                    "({problem}); tell the supervisor")


def command_rejected_message(kind: str, order_id: str, problem: str) -> dict[str, str]:
    values = {"kind": kind, "order_id": order_id, "problem": problem}
    return {"zh": COMMAND_REJECTED[0].format_map(values), "en": COMMAND_REJECTED[1].format_map(values)}


COMMAND_WORDING = {  # what a countdown command is, for the supervisor
    "cancel": ("取消", "cancel"), "address_change": ("改址", "address change"),
    "note": ("备注", "note"),
}
FUSE_TRIPPED = ("熔断:订单 {order_id} 的{what}指令未在 {seconds:g} 秒内到达全部设备"
                "(未及时:{devices}),请主管处理",
                "Fuse tripped: the {what} of order {order_id} did not reach every device within "
                "{seconds:g} s (not in time: {devices}); supervisor, take over")


def fuse_message(order_id: str, what: str, seconds: float, devices: list[str]) -> dict[str, str]:
    """The supervisor's warning when a command's countdown ran out (edge/domain/countdown.py)."""
    zh, en = COMMAND_WORDING.get(what, (what, what))
    names = ", ".join(devices[:5]) + (" …" if len(devices) > 5 else "") or "?"
    values = {"order_id": order_id, "seconds": seconds, "devices": names}
    return {"zh": FUSE_TRIPPED[0].format_map({**values, "what": zh}),
            "en": FUSE_TRIPPED[1].format_map({**values, "what": en})}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def scan_message(outcome: ScanOutcome, code_text: str) -> dict[str, str]:
    values: dict[str, Any] = _Blank(code=code_text, order_id=outcome.order_id or "")
    values.update({k: v for k, v in outcome.details.items() if v is not None})
    state = outcome.state
    if state is not None and outcome.line_no is not None:
        line = state.order.lines[outcome.line_no]
        values.update(name=line.name or line.sku, qty=line.qty, packed=state.packed[outcome.line_no])
    if outcome.freeze is not None:
        zh, en = FREEZE_WORDING.get(outcome.freeze.reason, (outcome.freeze.reason,) * 2)
        values.update(freeze_zh=zh, freeze_en=en)
    zh, en = _TEMPLATES[outcome.reason]
    return {"zh": zh.format_map(values), "en": en.format_map(values)}
