"""The simulated world: the plate and its cells as built, the person standing on it, the population
of persons with their literature ranges, labelled single-leg trials and the validation corpus.
"""
