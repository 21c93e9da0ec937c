"""A Spark Connect server on this machine's loopback, for the tests of `sc://` masters.

Run as `python spark_connect_server.py PORT` with $SPARK_CONNECT_AUTHENTICATE_TOKEN set: it
starts Spark in local mode in this process with Spark's Connect plugin (as `spark-shell
--conf spark.plugins=…SparkConnectPlugin` would), which serves Spark Connect on
127.0.0.1:PORT to clients that give the token; prints `ready` and serves until it is
terminated (or for an hour at most, should its test run die without stopping it).
"""

from __future__ import annotations

import os
import sys
import time

from pyspark.sql import SparkSession

SETTINGS = {
    "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
    "spark.connect.grpc.binding.address": "127.0.0.1",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def main() -> None:
    builder = SparkSession.builder.master("local[2]").appName("segcli tests: Spark Connect")
    builder = builder.config("spark.connect.grpc.binding.port", sys.argv[1])
    token = os.environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"]
    builder = builder.config("spark.connect.authenticate.token", token)
    for key, value in SETTINGS.items():
        builder = builder.config(key, value)
    builder.getOrCreate()
    print("ready", flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    main()
