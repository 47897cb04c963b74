"""The simulated population, the single-leg trial synthesiser and the corpus (hardware/sim/population.py,
sim_trial.py, sim_corpus.py); the simulated person and patient drawing from it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hardware.sim.corpus import CASES, PLATES, corpus
from hardware.sim.person import SimPerson
from hardware.sim.population import AGE_GROUPS, RANGES, TRANSFER_SHAPES, PersonTraits, draw_person, transfer_profile
from hardware.sim.trial import SupportPlan, TouchdownPlan, TrialPlan, synthesize_single_leg
from station.clinic.sim_patient import SimulatedPatient
from station.core.cop import GRAVITY_M_S2, centre_of_pressure
from station.core.geometry import PlateGeometry

FIELDS_WITH_A_RANGE = [f.name for f in dataclasses.fields(PersonTraits) if f.name in RANGES]


def test_every_range_names_its_source_and_is_ordered():
    for name, r in RANGES.items():
        assert r.lo < r.hi, name
        assert r.source.strip(), name


def test_draws_stay_inside_their_ranges_and_reach_both_ends():
    rng = np.random.default_rng(1)
    people = [draw_person(rng) for _ in range(600)]
    for name in FIELDS_WITH_A_RANGE:
        values = np.array([getattr(p, name) for p in people])
        if name == "lean_mm":  # weak abductors lean from their own range
            values = np.array([p.lean_mm for p in people if p.condition == "healthy"])
        if name == "fz_highpass_hz":  # half the people have none: flat down to DC
            assert 0.3 < np.mean(values == 0.0) < 0.7
            values = values[values > 0]
        r = RANGES[name]
        assert values.min() >= r.lo - 1e-9 and values.max() <= r.hi + 1e-9, name
        span = r.hi - r.lo
        assert values.min() < r.lo + 0.2 * span and values.max() > r.hi - 0.2 * span, name
    assert {p.age_group for p in people} == set(AGE_GROUPS)
    assert {p.transfer_shape for p in people} == set(TRANSFER_SHAPES)
    assert {p.condition for p in people} == {"healthy", "weak_abductors"}


def test_older_and_weaker_people_sway_and_fluctuate_more():
    rng = np.random.default_rng(2)
    young = [draw_person(rng, age_group="young", condition="healthy") for _ in range(200)]
    weak = [draw_person(rng, age_group="older", condition="weak_abductors") for _ in range(200)]
    for name in ("sway_one_ml_rms_mm", "fz_one_sd_pct"):
        assert np.median([getattr(p, name) for p in weak]) > 1.3 * np.median([getattr(p, name) for p in young])
    assert min(p.lean_mm for p in weak) >= RANGES["lean_weak_mm"].lo


def test_draw_person_checks_its_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="rng"):
        draw_person(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="age_group"):
        draw_person(rng, age_group="teen")
    with pytest.raises(ValueError, match="condition"):
        draw_person(rng, condition="tired")
    with pytest.raises(ValueError, match="mass_kg"):
        draw_person(rng, mass_kg=5.0)


@pytest.mark.parametrize("shape", TRANSFER_SHAPES)
def test_transfer_profiles_go_from_0_to_1_with_flat_ends(shape):
    u = np.linspace(0, 1, 2001)
    p = transfer_profile(u, shape=shape)
    assert p[0] == pytest.approx(0.0, abs=1e-12) and p[-1] == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(p) >= -1e-12)
    slope = np.gradient(p, u)
    assert abs(slope[-1]) < 0.05  # a smooth end: the lifted foot's load fades to zero
    with pytest.raises(ValueError, match="shape"):
        transfer_profile(u, shape="step")


def _person(**changes) -> PersonTraits:
    base = draw_person(np.random.default_rng(5), age_group="middle", condition="healthy", mass_kg=70.0)
    return dataclasses.replace(base, **changes)


def test_a_synthesised_trial_carries_its_truth():
    person = _person(creep_pct=0.0, drift_n_per_min=0.0, transfer_shape="cosine", transfer_s=1.0, lean_mm=5.0)
    plan = TrialPlan(stance_side="right", fs_hz=100.0, geometry=PlateGeometry(), lift_s=6.0,
                     touchdowns=(TouchdownPlan(t_s=10.0, where="floor", load_pct=40.0, rise_s=0.1, duration_s=0.8),),
                     supports=(SupportPlan(t_s=2.0, duration_s=4.0, level_pct=5.0, ramp_s=0.3, cv=0.2,
                                           corner_hz=1.0),))
    rec, truth = synthesize_single_leg(person, plan)
    assert truth.onset_s == pytest.approx(7.0)
    assert truth.hold_time_s == pytest.approx(10.0) and not truth.completed
    assert truth.touchdowns == [(17.0, pytest.approx(17.8), "floor")]
    assert truth.supports[0][:2] == (pytest.approx(9.0), pytest.approx(13.0))
    assert 3.0 < truth.supports[0][2] < 5.0  # ramps included, unsteady around 5 %
    t = rec.t_s
    fz, x, _ = centre_of_pressure(rec.forces_n, ml_mm=400.0, ap_mm=300.0)
    bw = 70.0 * GRAVITY_M_S2
    quiet = (t > 1.0) & (t < 5.0)
    assert np.median(fz[quiet]) == pytest.approx(bw, rel=0.01)
    # on one leg, the COP is over the right footprint plus the lean (lateral is +x on the right)
    single = (t > 7.5) & (t < 8.5)
    assert np.mean(x[single]) == pytest.approx(100.0 + 5.0, abs=3 * person.sway_one_ml_rms_mm)
    # the lifted foot's load reaches zero at the onset and not before
    load = truth.extra["lifted_load"]
    assert load[t < 6.9].min() > 0.0 and np.all(load[(t >= 7.0) & (t < 9.0)] == 0.0)
    floor = (t > 17.3) & (t < 17.6)
    assert np.median(fz[floor]) == pytest.approx(0.6 * bw, rel=0.03)
    assert rec.metadata["stance_side"] == "right" and rec.sample_rate_hz == 100.0


def test_the_same_person_gives_the_same_trial():
    person = _person()
    plan = TrialPlan(stance_side="left", fs_hz=80.0, geometry=PlateGeometry(), lift_s=5.0, jitter_frac=0.2)
    a, _ = synthesize_single_leg(person, plan)
    b, _ = synthesize_single_leg(person, plan)
    assert np.array_equal(a.forces_n, b.forces_n) and np.array_equal(a.t_s, b.t_s)
    assert np.all(np.diff(a.t_s) > 0)


def test_the_corpus_is_seeded_and_covers_the_cases():
    first = corpus(40)
    again = corpus(60)[:40]
    assert [(c.person, c.plan) for c in first] == [(c.person, c.plan) for c in again]
    assert {c.case for c in first} == set(CASES)
    assert {c.plan.geometry for c in first} == set(PLATES)
    with pytest.raises(ValueError, match="n"):
        corpus(0)


def test_the_simulated_person_takes_a_drawn_persons_sway():
    steady = _person(sway_one_ml_rms_mm=3.5, sway_one_freq_hz=0.7)
    shaky = _person(sway_one_ml_rms_mm=10.0, sway_one_freq_hz=0.7)
    spreads = []
    for traits in (steady, shaky):
        person = SimPerson(rng=np.random.default_rng(3), rate_hz=100.0)
        person.behave("person", traits=traits.to_dict())
        person.behave("single_leg", stance_side="left", transition_s=0.5)
        person.run(duration_s=3.0)
        x = np.array([s.cop_ml_mm for s in person.run(duration_s=60.0)])
        spreads.append(float(np.std(x)))
    assert spreads[0] == pytest.approx(3.5, rel=0.35) and spreads[1] == pytest.approx(10.0, rel=0.35)
    with pytest.raises(ValueError, match="traits"):
        SimPerson(rng=np.random.default_rng(0)).behave("person", traits={"no_such_trait": 1})


def test_each_test_of_the_simulated_patient_is_done_by_a_new_person():
    patient = SimulatedPatient(profile="weak_abductors", rng=np.random.default_rng(4))
    people = []
    for _ in range(3):
        (name, params), _ = patient.on_start(plate_occupied=True)
        assert name == "behaviour" and params["name"] == "person"
        people.append(PersonTraits(**params["traits"]))
        (kind, scenario), = patient.on_lift_instruction(stance_side="left", hold_s=30.0)
        lift = scenario["steps"][0]
        assert lift["transition_s"] == pytest.approx(people[-1].transfer_s)
    assert len({p.seed for p in people}) == 3
    assert all(p.condition == "weak_abductors" for p in people)


def test_the_pelvis_is_drawn_within_its_ranges_by_condition():
    """Issue 14: the simulated pelvis sensor's person (hardware.sim.population.draw_pelvis)."""
    from hardware.sim.population import PELVIS_RANGES, draw_pelvis

    for name, r in PELVIS_RANGES.items():
        assert r.lo < r.hi and r.source.strip(), name
    rng = np.random.default_rng(3)
    healthy = [draw_pelvis(rng, condition="healthy") for _ in range(200)]
    weak = [draw_pelvis(rng, condition="weak_abductors") for _ in range(300)]
    assert {p.strategy for p in healthy} == {"rise"}
    assert all(-3.0 <= p.drop_deg <= -0.5 and p.fatigue_deg_per_s == 0 for p in healthy)  # the lifted side rises
    drops = [p for p in weak if p.strategy == "drop"]
    leans = [p for p in weak if p.strategy == "lean"]
    assert 0.2 < len(leans) / len(weak) < 0.4  # some compensate with a trunk lean
    assert all(2.5 <= p.drop_deg <= 6.0 and 0.05 <= p.fatigue_deg_per_s <= 0.2 for p in drops)
    assert all(abs(p.drop_deg) <= 1.0 and 10.0 <= p.trunk_lean_extra_mm <= 25.0 for p in leans)
    assert draw_pelvis(rng, condition="weak_abductors", compensates=False).strategy == "drop"
    assert draw_pelvis(rng, condition="weak_abductors", compensates=True).strategy == "lean"


def test_the_simulated_pelvis_follows_the_test():
    from hardware.sim.pelvis import SimulatedPelvis
    from hardware.sim.population import draw_pelvis

    traits = draw_pelvis(np.random.default_rng(5), condition="weak_abductors", compensates=False)
    pelvis = SimulatedPelvis(traits=traits)
    assert pelvis.drop_deg(5.0) == 0.0  # two feet
    pelvis.command("single_leg", at_s=10.0, stance_side="left", transition_s=1.0, touchdowns=[(30.0, 1.0)])
    assert pelvis.drop_deg(10.0 + 1.0 + traits.drop_s) == pytest.approx(traits.drop_deg, abs=0.2)
    assert pelvis.drop_deg(25.0) > pelvis.drop_deg(15.0)  # growing with fatigue
    assert pelvis.drop_deg(30.5) == pytest.approx(0.0, abs=1e-9)  # the foot down: level again
    # standing on the left, the right side drops: the obliquity (right side higher positive) falls
    assert pelvis.at(20.0) < traits.level_deg - traits.drop_deg + 3 * traits.sway_one_deg
    assert pelvis.at(20.0) == pelvis.at(20.0)  # the same value however often it is asked for
    pelvis.command("quiet", at_s=40.0)
    assert pelvis.drop_deg(41.0) == 0.0
    with pytest.raises(ValueError, match="no command"):
        pelvis.command("jump")
