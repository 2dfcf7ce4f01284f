"""The tool shed: commands an operator or developer runs beside the service, never the service itself.

``placesense bench`` (``bench``: the run, its workload, helper processes and meters), ``placesense doctor``,
``placesense demo``, ``placesense broker-config`` (``broker_config``), ``placesense privacy`` (``privacy``:
retention, export, erasure) and the local servers the demo, the tests and the benchmark start (``localstack``:
one module per server). These modules may import the composition root and every room; nothing imports them
except the CLI's sub-command table (``placesense.cli``), which loads one only when its command is run, so
``placesense serve`` never loads a tool.
"""
