"""placesense.basics: the bottom room, what every other room needs and nothing more.

The exception hierarchy, clocks, local time and time units, small statistics, the relational database engine,
private files, memory settling, alert texts and the ``Finding`` with its audience and severity. This room imports
nothing else from the project, so any room (devices and firmware_sim included) may import it without pulling in
another; it must not read settings, build clients or hold state of its own.
"""
