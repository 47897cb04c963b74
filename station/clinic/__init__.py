"""The clinic's live work: the trial controller (:mod:`.controller`), the live trial
(:mod:`.live_trial`), a visit's tests (:mod:`.visit`), the pair of single-leg tests, the recorder and
the simulated patient.
"""
