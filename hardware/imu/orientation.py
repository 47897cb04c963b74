"""The pelvis's frontal-plane obliquity from the IMU's samples: imufusion's AHRS and a mounting calibration.

Orientation: x-io Technologies' Fusion AHRS (``imufusion`` on PyPI, MIT
licence, C with Python bindings, wheels for the Pi's aarch64), without a
magnetometer (heading is not needed and the clinic's steel would disturb
it), with Fusion's gyroscope bias estimation while still (``imufusion.Bias``)
and its acceleration rejection (a jolt of the body does not tilt the
estimate). Why Fusion rather than ``ahrs``: docs/pelvis-sensor.md.

Obliquity: the angle of the pelvis's right-pointing axis (the line between
the hip bones) above the horizontal, positive when the patient's right side
is higher (DESIGN.md section 4). From the fused orientation the station takes
only the direction of "up" in the sensor's axes; the **mounting
calibration** in two-foot stance (the patient standing still on the plate
before the test, :mod:`hardware.imu.source`) measures the
gyroscope's bias (the mean rate while standing still) and defines the
pelvis's axes in the sensor's:

* ``z``: up as the sensor saw it (the mean accelerometer reading) over the
  calibration window (the patient standing level on both feet);
* ``x``: the sensor's axis marked "R" on the housing (pointing to the
  patient's right), made horizontal (its component along ``z`` removed);
* ``y = z x x`` (forward).

Then ``obliquity = asin(up . x)`` in those axes. The sacrum's slope, the belt
sitting askew in the plane of the back, and the sensor's tilt on the belt
all vanish in the calibration; the obliquity is zero in the two-foot stance
the calibration saw. The one mounting error left is the sensor turned about
the vertical by an angle a, which mixes ``sin a`` of the sagittal tilt into
the obliquity (0.16 degrees for 3 degrees of tilt at a = 3 degrees).

References
----------
.. [1] Madgwick SOH, Wilson S, Turk R, Burridge J, Kapetanakis C, Harris R
   (2020) An extended complementary filter for full-body MARG orientation
   estimation. IEEE/ASME Trans Mechatron 25(4):2054-2064 (the Fusion AHRS).
.. [2] Bolink SAAN, Naisas H, Senden R, Essers H, Heyligers IC, Meijer K,
   Grimm B (2016) Validity of an inertial measurement unit to assess pelvic
   orientation angles during gait, sit-stand transfers and step-up transfers:
   comparison with an optoelectronic motion capture system. Med Eng Phys
   38(3):225-231 (a single sacral IMU measures pelvic obliquity).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["PelvisObliquity", "calibration_matrix", "obliquity_from_up"]


def calibration_matrix(*, up_sensor: np.ndarray, right_axis: Sequence[float] = (1.0, 0.0, 0.0)) -> np.ndarray:
    """Rows: the pelvis's x (right), y (forward), z (up) axes in the sensor's axes.

    Parameters
    ----------
    up_sensor : ndarray (3,)
        "Up" in the sensor's axes in two-foot stance (any length).
    right_axis : sequence of 3
        The sensor axis that points to the patient's right (the housing's "R").
    """
    z = np.asarray(up_sensor, dtype=np.float64)
    z = z / np.linalg.norm(z)
    r = np.asarray(right_axis, dtype=np.float64)
    x = r - np.dot(r, z) * z
    norm = np.linalg.norm(x)
    if norm < 0.2:
        raise ValueError("the sensor's right axis points almost vertically: the sensor is mounted the wrong way round")
    x = x / norm
    return np.vstack([x, np.cross(z, x), z])


def obliquity_from_up(*, up_pelvis: np.ndarray) -> float:
    """Obliquity in degrees from "up" in the calibrated pelvis axes (positive: the right side higher)."""
    u = np.asarray(up_pelvis, dtype=np.float64)
    return math.degrees(math.asin(max(-1.0, min(1.0, float(u[0] / np.linalg.norm(u))))))


def _quaternion_wxyz(rotation: np.ndarray) -> np.ndarray:
    """The unit quaternion (w, x, y, z) of a rotation matrix (Fusion's order)."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(rotation).as_quat()
    return np.array([w, x, y, z])


class PelvisObliquity:
    """Sample-by-sample obliquity: the AHRS, the gyroscope bias, the mounting calibration.

    Parameters
    ----------
    sample_rate_hz : float
        The IMU's output data rate.
    gyro_range_dps : float
        The gyroscope's full scale (Fusion's overrange handling).
    right_axis : sequence of 3
        The sensor axis pointing to the patient's right.
    gain : float
        Fusion's AHRS gain (0.5, its recommended value).
    acceleration_rejection_deg : float
        Accelerometer samples further than this from the estimate are ignored (10 degrees).
    """

    def __init__(self, *, sample_rate_hz: float, gyro_range_dps: float = 250.0,
                 right_axis: Sequence[float] = (1.0, 0.0, 0.0), gain: float = 0.5,
                 acceleration_rejection_deg: float = 10.0) -> None:
        import imufusion

        self._imufusion = imufusion
        self.sample_rate_hz = float(sample_rate_hz)
        self.right_axis = tuple(float(v) for v in right_axis)
        self.ahrs = imufusion.Ahrs()
        self.ahrs.set_settings(imufusion.AhrsSettings(
            sample_rate=self.sample_rate_hz, convention=imufusion.CONVENTION_NWU, gain=gain,
            gyroscope_range=gyro_range_dps, acceleration_rejection=acceleration_rejection_deg,
            magnetic_rejection=0.0, rejection_timeout=5.0 * self.sample_rate_hz))
        self.bias = imufusion.Bias()
        self.bias.set_settings(imufusion.BiasSettings(sample_rate=self.sample_rate_hz, stationary_threshold=3.0,
                                                      stationary_period=3.0))
        self.calibration: np.ndarray | None = None
        self._collect: list[np.ndarray] | None = None
        self._last_t: float | None = None

    def up_sensor(self) -> np.ndarray:
        """"Up" (the earth's z) in the sensor's axes, from the current orientation."""
        q = self.ahrs.get_quaternion()
        return np.asarray(self._imufusion.quaternion_to_matrix(np.asarray(q, dtype=np.float64)))[2, :]

    def update(self, *, t_s: float, gyro_dps: Sequence[float], accel_g: Sequence[float]) -> float | None:
        """Fuse one sample; the obliquity in degrees, None before the calibration."""
        g = np.asarray(gyro_dps, dtype=np.float64)
        a = np.asarray(accel_g, dtype=np.float64)
        dt = 1.0 / self.sample_rate_hz if self._last_t is None else max(1e-4, min(0.1, t_s - self._last_t))
        self._last_t = float(t_s)
        if self._collect is not None:
            self._collect.append(np.concatenate([g, a]))
        g = np.asarray(self.bias.update(g), dtype=np.float64)
        self.ahrs.set_sample_period(dt)
        self.ahrs.update_no_magnetometer(g, a)
        up = self.up_sensor()
        if self.calibration is None:
            return None
        return obliquity_from_up(up_pelvis=self.calibration @ up)

    def start_calibration(self) -> None:
        """Start collecting "up" for the mounting calibration (the patient standing still on both feet)."""
        self._collect = []

    def cancel_calibration(self) -> None:
        """Drop the samples collected since :meth:`start_calibration` (the patient moved)."""
        self._collect = None

    @property
    def calibrating(self) -> bool:
        return self._collect is not None

    def finish_calibration(self) -> np.ndarray:
        """End the calibration; returns the pelvis axes in the sensor's (rows x, y, z).

        Over the calibration window the patient stands still on both feet, so
        the mean gyroscope reading is its bias (quiet sway turns the pelvis
        back and forth: its mean rate is zero) and the mean accelerometer
        reading points up. The bias is handed to Fusion's bias estimate, the
        pelvis axes are built on the mean "up", and the AHRS's orientation is
        set to them (a rotation from the sensor's axes to a level frame), so
        the bias it had integrated until then leaves no trace.
        """
        if not self._collect:
            raise ValueError("no samples since start_calibration(): stand still on both feet and try again")
        mean = np.mean(np.vstack(self._collect), axis=0)
        self._collect = None
        self.bias.set_offset(mean[:3])
        self.calibration = calibration_matrix(up_sensor=mean[3:], right_axis=self.right_axis)
        self.ahrs.set_quaternion(_quaternion_wxyz(self.calibration))
        return self.calibration
