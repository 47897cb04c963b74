"""Station settings: one pydantic-settings class, read from a TOML file and the environment.

Precedence, highest first: command-line options, environment variables
(``BALANCE_STATION_...``, nested keys joined with ``__``, for example
``BALANCE_STATION_WEB__PORT=8080``), the TOML file, the defaults below.

The TOML file is the one given with ``--config``, else ``$BALANCE_STATION_CONFIG``,
else the first of ``~/.config/balance-station/station.toml`` and
``/etc/balance-station/station.toml`` that exists. Without any, the defaults
run the station on the simulated plate.
"""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from station.core.errors import UserError
from station.core.geometry import PlateGeometry

SYSTEM_CONFIG = Path("/etc/balance-station/station.toml")


def _user_config() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "balance-station" / "station.toml"


#: the station id when the machine has no usable host name
FALLBACK_STATION_ID = "balance-station"
#: the longest station id (the database's column)
STATION_ID_MAX_LEN = 64


def default_station_id() -> str:
    """The machine's host name (its first label, as ``hostname -s`` prints it), so that stations sharing a
    clinic database are told apart without configuring anything; ``balance-station`` without one."""
    name = socket.gethostname().strip().split(".")[0][:STATION_ID_MAX_LEN]
    return name or FALLBACK_STATION_ID


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "balance-station"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlateSettings(_Section):
    """Geometry of the plate, in mm (DESIGN.md section 3)."""

    ml_mm: float = Field(400.0, gt=0, lt=5000, description="distance between left and right cell centres")
    ap_mm: float = Field(300.0, gt=0, lt=5000, description="distance between back and front cell centres")
    feet_ml_mm: float = Field(200.0, gt=0, lt=5000, description="distance between the footprint centres")
    occupancy_n: float = Field(100.0, gt=0, description="below this total force nobody is on the plate")

    @model_validator(mode="after")
    def _feet_between_cells(self) -> PlateSettings:
        if self.feet_ml_mm > self.ml_mm:
            raise ValueError(f"feet_ml_mm ({self.feet_ml_mm}) must not exceed the cell spacing ml_mm ({self.ml_mm})")
        return self

    def geometry(self) -> PlateGeometry:
        return PlateGeometry(ml_mm=self.ml_mm, ap_mm=self.ap_mm, feet_ml_mm=self.feet_ml_mm)


class HX711Settings(_Section):
    """The HX711 plate. Its presence in the file means the plate is configured."""

    backend: Literal["lgpio", "rpigpio"] = "lgpio"
    gpiochip: int = Field(0, ge=0, description="gpiochip number (Pi 5 on kernels before 6.6.45: 4)")
    sck_gpio: int = Field(5, ge=0, le=53, description="shared PD_SCK line (lgpio backend)")
    data_gpios: list[int] = Field([17, 27, 22, 23], description="DOUT of fl, fr, bl, br")
    sck_gpios: list[int] = Field([5, 6, 19, 26], description="PD_SCK of fl, fr, bl, br (rpigpio backend)")
    max_high_us: float = Field(50.0, gt=0, lt=60, description="discard a frame whose clock-high phase ran longer")
    ready_timeout_s: float = Field(0.5, gt=0, le=1.0, description="a board not ready within this is a fault")

    @field_validator("data_gpios", "sck_gpios")
    @classmethod
    def _four_pins(cls, pins: list[int]) -> list[int]:
        if len(pins) != 4 or len(set(pins)) != 4 or not all(0 <= p <= 53 for p in pins):
            raise ValueError(f"give 4 different GPIO numbers (fl, fr, bl, br), got {pins}")
        return pins


class SimulatorSettings(_Section):
    """The simulated person on the simulated plate."""

    seed: int | None = Field(None, description="random seed; none gives a different person each start")
    body_mass_kg: float = Field(70.0, gt=10, lt=250)
    glitch_rate: float = Field(1 / 2000, ge=0, lt=0.1, description="share of frames with a bit-error spike")
    speed: float = Field(1.0, ge=0.1, le=20.0,
                         description="simulated time runs this much faster than the clock "
                                     "(demonstrations; 1 = real time)")
    patient: Literal["healthy", "weak_abductors", "none", "trunk_lean"] = Field(
        "healthy", description="who performs the tests started on the simulated plate: a healthy person, one with "
                               "weak hip abductors (sway, touchdowns, hand support; with a simulated pelvis sensor "
                               "the lifted side drops), nobody (steer with the keys), or one with weak abductors "
                               "who compensates with a trunk lean (the pelvis stays level, the COP moves lateral)")

    chip_fault: str = Field(
        "none", description="--plate chip-model only: a fault injected into one chip model, 'CELL:KIND' with KIND "
                            "stuck_low (DOUT shorted to ground), unplugged (DOUT high) or power_down (a long clock "
                            "pulse every 0.5 s), e.g. 'fr:stuck_low'; 'none' for none")
    chip_fault_after_s: float = Field(
        5.0, ge=0, le=86400, description="--plate chip-model only: when the chip fault starts, after the plate opens")
    chip_clock: Literal["paced", "real"] = Field(
        "paced", description="--plate chip-model only: 'paced' runs the chip models and the backend's timing on a "
                             "clock paced to real time (a GPIO call costs 1 us, as on a Pi); 'real' on the system "
                             "clock, where this machine's scheduling hiccups inside a clock pulse power the chips down")


class PelvisSettings(_Section):
    """The pelvis sensor (docs/pelvis-sensor.md). Its presence in the file turns it on; the plate works without it."""

    sensor: Literal["auto", "icm42688", "simulated"] = Field(
        "auto", description="the ICM-42688-P on I2C, or the simulated sensor worn by the simulated patient "
                            "(simulated plate only); auto: the simulated one on the simulated plate, else the ICM")
    bus: int = Field(1, ge=0, le=31, description="I2C bus number (/dev/i2c-N)")
    address: int = Field(0x68, ge=0x68, le=0x69, description="0x68 with AD0 to GND, 0x69 with AD0 high")
    odr_hz: Literal[100, 200] = Field(100, description="the sensor's sample rate, Hz")
    right_axis: list[float] = Field([1.0, 0.0, 0.0], description="the sensor axis to the patient's right "
                                                                  "(the lid's arrow R: x)")

    @field_validator("right_axis")
    @classmethod
    def _three_numbers(cls, axis: list[float]) -> list[float]:
        if len(axis) != 3 or not any(axis):
            raise ValueError(f"give 3 numbers, not all 0 (x, y, z of the sensor), got {axis}")
        return axis


class ControlsSettings(_Section):
    """Start button, status LED and buzzer on gpiozero."""

    enabled: bool = False
    button_gpio: int = Field(16, ge=0, le=53)
    led_gpio: int = Field(12, ge=0, le=53)
    buzzer_gpio: int = Field(13, ge=0, le=53)


class ScreenSettings(_Section):
    enabled: bool = True
    fullscreen: bool = Field(True, description="full screen (on the Pi); a window otherwise")
    width: int = Field(1280, ge=320)
    height: int = Field(720, ge=240)
    fps: int = Field(60, ge=10, le=240)


class WebSettings(_Section):
    host: str = Field("127.0.0.1", description="0.0.0.0 serves the clinic network: see docs for HTTPS")
    port: int = Field(8000, ge=1, le=65535)
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names the page may be reached by (Host header); default: this machine's own "
                    "names when bound to loopback, any when bound to the network",
    )

    public_url: str | None = Field(
        None, max_length=200, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="the address other computers reach this station's web page at (https://station-room1.local "
                    "behind a proxy), stored with its contact so that 'balance-station serve' can start tests "
                    "on it; default: http://<host>:<port>, with this machine's name when bound to every address")
    https: bool = Field(
        False, description="the page is reached over HTTPS (a reverse proxy or uvicorn's TLS): session cookies "
                           "get the Secure flag (they get it anyway on a request that arrived over HTTPS)")
    session_idle_minutes: float = Field(30.0, gt=0, le=24 * 60, description="log out after this long without a request")
    session_max_hours: float = Field(12.0, gt=0, le=24 * 31, description="log out this long after the login, whatever")
    login_max_failures: int = Field(5, ge=1, le=100, description="failed logins that lock an account")
    login_client_max_failures: int = Field(10, ge=1, le=1000,
                                           description="failed logins from one address that lock it out")
    login_lockout_minutes: float = Field(15.0, gt=0, le=24 * 60, description="how long a lock-out lasts")

    def station_url(self) -> str:
        """The web address other computers use for this station: ``public_url``, else made from the binding."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.getfqdn() or socket.gethostname() or "localhost"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def trusted_hosts(self) -> list[str]:
        """Host names accepted in requests: a page elsewhere cannot reach the station by DNS rebinding."""
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        if self.host in ("127.0.0.1", "localhost", "::1"):
            return ["127.0.0.1", "localhost", "[::1]", "::1"]
        return ["*"]


class StationSettings(BaseSettings):
    """Everything the station can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="BALANCE_STATION_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    station_id: str = Field(
        default_factory=default_station_id, min_length=1, max_length=STATION_ID_MAX_LEN,
        description="this station's name, stored with every trial it records; default: the machine's host name. "
                    "Each station sharing a clinic database needs its own (room-a, room-b): set it when two "
                    "stations have the same host name (a Pi's default is raspberrypi)")
    plate_source: Literal["auto", "simulated", "hx711", "chip-model"] = "auto"
    data_dir: Path = Field(default_factory=default_data_dir)
    calibration_file: Path | None = Field(None, description="default: calibration.json in the data folder")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite station.db in the data folder")
    calibration_max_age_days: float = Field(30.0, gt=0)
    auto_rezero: bool = Field(True, description="re-zero the cells when the plate is empty and still, between trials")
    zero_drift_warn_n: float = Field(20.0, gt=0,
                                     description="warn when the empty plate's zero moved this far since calibration")
    plate: PlateSettings = PlateSettings()
    hx711: HX711Settings | None = None
    simulator: SimulatorSettings = SimulatorSettings()
    pelvis: PelvisSettings | None = None
    controls: ControlsSettings = ControlsSettings()
    screen: ScreenSettings = ScreenSettings()
    web: WebSettings = WebSettings()
    #: where the TOML came from, for messages and the status page
    config_file: Path | None = None

    @property
    def calibration_path(self) -> Path:
        return self.calibration_file or self.data_dir / "calibration.json"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))


class _TomlSource(PydanticBaseSettingsSource):
    """Supplies the TOML document chosen by :func:`load_settings` (lowest precedence)."""

    document: dict[str, Any] = {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return self.document.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.document)


def find_config_file(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    env = os.environ.get("BALANCE_STATION_CONFIG")
    if env:
        return Path(env)
    for candidate in (_user_config(), SYSTEM_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(f"{path}: no such configuration file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the configuration ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> StationSettings:
    """Build the settings from the file, the environment and ``overrides`` (command-line options).

    Raises :class:`UserError` with the file and the key for anything invalid.
    """
    path = find_config_file(config_file)
    document = read_toml(path) if path is not None else {}
    _TomlSource.document = document
    try:
        settings = StationSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        where = str(path) if path is not None else "settings"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise UserError(f"{where}: {key}: {first['msg']}{more}") from None
    finally:
        _TomlSource.document = {}
    settings.config_file = path
    return settings
