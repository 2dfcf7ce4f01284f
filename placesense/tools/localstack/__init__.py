"""Local mosquitto, InfluxDB and PostgreSQL processes for the demo, the tests and the benchmark.

The package only starts, checks and stops servers from Debian's packages, with their data in a folder we choose
(``var/`` for the demo, a temporary folder for tests). It knows nothing about readings or devices. Production
deployments point placesense at their own broker, InfluxDB and database instead.

``process`` holds what the servers share (ports, a managed process and its log, waiting with a deadline,
``running`` and ``pid_file_stop``); ``mosquitto``, ``influxdb`` and ``postgres`` hold one server each. Import them
from their modules: this file hands on no names.
"""
