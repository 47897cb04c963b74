"""The live side of the station: the acquisition process that reads the plate, the pipe its frames
come through, and the live pipeline that turns them into force frames for the screen, the web page
and the running trial.
"""
