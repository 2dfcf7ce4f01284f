"""Privacy controls for UK GDPR: retention, a subject-access export of one home, erasure of one home, audit export.

A home is known outside the registry only by its pseudonymous id (``h-…``). Its personal data lives in:
InfluxDB (every measurement, tag ``subject`` = the home), the relational store (alerts and their history, dead
letters recorded under the home or from its devices, those devices' status and discovered-device rows), the
broker (its devices' retained status messages), the learned state (``state_dir``), and the registry file itself
(the resident's name), which an admin edits by hand. Every match is exact (ids, subjects, topics), never a
pattern: erasing one home never touches another's data.

Erasure is recorded in the append-only API audit log (``api.audit``) under the pseudonymous id only: the
council must be able to show that and when it erased (UK GDPR Art. 5(2), accountability), and the id alone no
longer identifies anyone once the registry entry is gone.

The package: ``stores`` (``PrivacyStores``: the stores, and which of their rows are one home's), ``export``
(subject access and the audit export), ``erasure`` (``delete_home``), ``retention`` (the periods and deleting what
is older), ``controls`` (``PrivacyControls``, the one object the CLI and tests use) and ``cli`` (``placesense
privacy``). They read and delete through the rooms' public tables and functions. Import names from their
modules: this file hands on none.
"""
