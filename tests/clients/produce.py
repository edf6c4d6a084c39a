"""Produces records to Kafka with a plain client (kafka-python), not campusg's code.

Usage: produce.py BOOTSTRAP TOPIC KEY VALUE [KEY VALUE ...]
The scenario tests use it to show that a message written by hand in the seeds'
format, by any Kafka client, drives the system.
"""

import sys

from kafka import KafkaProducer


def main() -> None:
    bootstrap, topic, *pairs = sys.argv[1:]
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for key, value in zip(pairs[0::2], pairs[1::2]):
        producer.send(topic, key=key.encode(), value=value.encode()).get(timeout=30)
    producer.flush()
    producer.close()


if __name__ == "__main__":
    main()
