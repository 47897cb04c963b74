"""Scoring: a recording on its nominal grid (:mod:`.prepare`), the scores (:mod:`.scores`), the age
norms (:mod:`.norms`), and at the top :mod:`.analyze`, where ``balance-station analyze`` and the live
test's result are the same function.
"""
