"""alerts: what happens to a finding once a rule or detector has made it — the one alert lifecycle, its store and
audit trail, who is told (rotas, routing), the outbox and its dispatcher, acknowledge links, and one channel per
transport (MQTT, webhooks, GOV.UK Notify, SMTP, chat).

Rules and detectors hand findings to ``placesense.alerts.lifecycle.AlertService`` through the composition root;
they must not import this room, and this room must not evaluate readings or read settings.
"""
