"""The bench's own alarm: a buzzer and a red LED on GPIO pins, through gpiozero.

Pins come from ``gpio_buzzer_pin`` / ``gpio_led_pin`` (gpiozero names: ``GPIO17``, ``BOARD11``,
``17``). Unset, or on a machine without GPIO, the channel is off (logged once); the other
channels (pages, printer buzzer) do not depend on it.

While any alarm of level ``alarm`` waits for a person, the LED is lit and the buzzer beeps; when
the last one is acknowledged (bus message ``alarm_ack``) both stop. Alarms survive a restart, so
the channel looks at the active ones when it starts.
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanedge.edge.alarms import AlarmCenter
    from scanedge.edge.bus import EventBus
    from scanedge.edge.config import Settings

log = logging.getLogger(__name__)
BEEP_ON_S, BEEP_OFF_S = 0.25, 0.25


class GpioAlarm:
    def __init__(self, center: AlarmCenter, bus: EventBus, *, buzzer_pin: str = "",
                 led_pin: str = "", pin_factory: Any = None) -> None:
        from gpiozero import LED, Buzzer

        self.center = center
        self.buzzer = Buzzer(buzzer_pin, pin_factory=pin_factory) if buzzer_pin else None
        self.led = LED(led_pin, pin_factory=pin_factory) if led_pin else None
        self.sounding = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sub = bus.subscribe()
        self._thread = threading.Thread(target=self._watch_acks, name="gpio-alarm", daemon=True)
        self.bus = bus
        bus.on("alarm", self.on_alarm)
        self.refresh()
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings, center: AlarmCenter, bus: EventBus,
                      pin_factory: Any = None) -> GpioAlarm | None:
        if not (settings.gpio_buzzer_pin or settings.gpio_led_pin):
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # gpiozero's PinFactoryFallback chatter
                return cls(center, bus, buzzer_pin=settings.gpio_buzzer_pin,
                           led_pin=settings.gpio_led_pin, pin_factory=pin_factory)
        except Exception as e:  # BadPinFactory (no GPIO here), PinInvalidPin, permissions
            log.warning("GPIO alarm off (buzzer %r, LED %r): %s: %s", settings.gpio_buzzer_pin,
                        settings.gpio_led_pin, e.__class__.__name__, e)
            return None

    def on_alarm(self, alarm: dict[str, Any]) -> None:
        if alarm.get("level") == "alarm":
            self._sound()

    def refresh(self) -> None:
        """Sound while an alarm waits, quiet when none does."""
        if any(a.level == "alarm" for a in self.center.active()):
            self._sound()
        else:
            self._quiet()

    def _sound(self) -> None:
        with self._lock:
            if self.led is not None:
                self.led.on()
            if self.buzzer is not None and not self.sounding:
                self.buzzer.beep(on_time=BEEP_ON_S, off_time=BEEP_OFF_S, background=True)
            self.sounding = True

    def _quiet(self) -> None:
        with self._lock:
            if self.led is not None:
                self.led.off()
            if self.buzzer is not None:
                self.buzzer.off()
            self.sounding = False

    def _watch_acks(self) -> None:
        while not self._stop.is_set():
            message = self._sub.get(timeout=0.5)
            if message is not None and message.kind == "alarm_ack":
                try:
                    self.refresh()
                except Exception:
                    log.exception("GPIO alarm refresh failed")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sub.close()
        self.bus.off("alarm", self.on_alarm)
        for device in (self.buzzer, self.led):
            if device is not None:
                device.close()
