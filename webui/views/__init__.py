"""What the pages show, without the web framework: view models (:mod:`.pages_data`), SVG charts
(:mod:`.charts`) and the visit's PDF report (:mod:`.report`).
"""
