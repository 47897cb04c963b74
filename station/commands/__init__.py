"""The command line: one module per subcommand of ``balance-station`` (:mod:`.cli` is the entry
point). The only layer that sees every other.
"""
