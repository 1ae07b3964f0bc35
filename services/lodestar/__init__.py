"""Lodestar: a self-hosted, Kafka-native customer-engagement pipeline."""

__version__ = "0.1.0"
