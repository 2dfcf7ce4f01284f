"""Tests of the devices room: registry, topic parsing, format decoders, payload codecs and their encoders."""
