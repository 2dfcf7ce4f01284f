"""channels: one module per transport an outbox delivery goes out on (``mqtt``, ``webhook``, ``govuk_notify``,
``smtp``, ``chat``), each a ``base.Channel``. The composition root builds them and passes secrets in; they must
not read settings or decide who is told.
"""
