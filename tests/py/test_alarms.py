"""The alarm table: for each way the pipeline can stop or lose its way, the alarm that fires, the
metric it reads, how it treats missing data, and its threshold; asserted against the
SAM-transformed template (TRANSFORMED, as for test_template.py). docs/runbook.md has a row for
every alarm.

Missing data is the point of most rows: a stopped event source mapping invokes nothing, so every
metric of the ingest function goes missing, exactly as for an idle topic. An alarm whose metric
stops when the thing it watches stops must treat missing data as breaching; an alarm on a count
of failures treats it as notBreaching (no failures, no data points).

Most alarms compare a statistic with a static threshold. An anomaly detection alarm (a sudden rise
of a count that is never quite zero) has none: it reads its metric as a query in Metrics, and its
threshold is the ANOMALY_DETECTION_BAND expression that ThresholdMetricId names; its row's
threshold is a Band, and the template declares the band's model (an AWS::CloudWatch::AnomalyDetector
of the same metric and statistic)."""
import json
import os
import pathlib
from typing import NamedTuple

import pytest

with open(os.environ["TRANSFORMED"]) as f:
    TEMPLATE = json.load(f)
RES = TEMPLATE["Resources"]
RUNBOOK = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "runbook.md").read_text()
OURS = {"Fn::Sub": "Tributary/${AWS::StackName}"}  # the stack's own EMF namespace


class Band(NamedTuple):
    """The threshold of an anomaly detection alarm: the band of the metric's usual values (this many
    standard deviations wide), and the side of it that breaches."""
    std_devs: int
    operator: str


RISE = Band(2, "GreaterThanUpperThreshold")  # a sudden rise: above the band, not below it

# failure mode -> (alarm, namespace, metric, dimension, statistic, TreatMissingData, threshold)
TABLE = {
    # The event source mapping, watched by the watch function (IngestSourceStopped is 1 when the
    # mapping is not Enabled, or Enabled with a LastProcessingResult of PROBLEM).
    "the mapping is disabled (by a person or by Lambda)":
        ("IngestSourceStoppedAlarm", OURS, "IngestSourceStopped", "watch", "Maximum", "breaching", 1),
    "authentication to Kafka fails (the mapping stays Enabled, LastProcessingResult PROBLEM)":
        ("IngestSourceStoppedAlarm", OURS, "IngestSourceStopped", "watch", "Maximum", "breaching", 1),
    "the watch itself does not run (no IngestSourceStopped data points)":
        ("IngestSourceStoppedAlarm", OURS, "IngestSourceStopped", "watch", "Maximum", "breaching", 1),
    "the watch fails":
        ("WatchErrorsAlarm", "AWS/Lambda", "Errors", "WatchFunction", "Sum", "notBreaching", 1),
    "the watch is throttled":
        ("WatchThrottlesAlarm", "AWS/Lambda", "Throttles", "WatchFunction", "Sum", "notBreaching", 1),
    "the watch nears its timeout":
        ("WatchDurationAlarm", "AWS/Lambda", "Duration", "WatchFunction", "Maximum", "notBreaching", 24000),
    # Ingest.
    "ingest errors (the batch is retried)":
        ("IngestErrorsAlarm", "AWS/Lambda", "Errors", "IngestFunction", "Sum", "notBreaching", 1),
    "ingest falls behind the topic":
        ("IngestOffsetLagAlarm", "AWS/Lambda", "OffsetLag", "IngestFunction", "Maximum", "ignore", {"Ref": "OffsetLagThreshold"}),
    "ingest is throttled":
        ("IngestThrottlesAlarm", "AWS/Lambda", "Throttles", "IngestFunction", "Sum", "notBreaching", 1),
    "ingest nears its timeout":
        ("IngestDurationAlarm", "AWS/Lambda", "Duration", "IngestFunction", "Maximum", "notBreaching", 240000),
    "records are dead-lettered":
        ("IngestDeadLetteredAlarm", OURS, "DeadLettered", "ingest", "Sum", "notBreaching", 1),
    "more rows than usual have a field that does not fit its column (kept in _rescued_data)":
        ("IngestRescuedRowsAlarm", OURS, "RowsRescued", "ingest", "Sum", "notBreaching", RISE),
    "a batch is given up on after 10 retries (failure record in the bucket)":
        ("IngestFailedBatchesAlarm", "AWS/Events", "TriggeredRules", "IngestFailedBatchRule", "Sum", "notBreaching", 1),
    "the failure record cannot be written (the batch is skipped)":
        ("IngestDestinationDeliveryFailuresAlarm", "AWS/Lambda", "DestinationDeliveryFailures", "IngestFunction", "Sum", "notBreaching", 1),
    # Catalog.
    "the catalog fails":
        ("CatalogErrorsAlarm", "AWS/Lambda", "Errors", "CatalogFunction", "Sum", "notBreaching", 1),
    "the catalog is throttled":
        ("CatalogThrottlesAlarm", "AWS/Lambda", "Throttles", "CatalogFunction", "Sum", "notBreaching", 1),
    "the catalog nears its timeout":
        ("CatalogDurationAlarm", "AWS/Lambda", "Duration", "CatalogFunction", "Maximum", "notBreaching", 96000),
    "a column's type change is refused":
        ("CatalogSchemaConflictsAlarm", OURS, "SchemaConflicts", "catalog", "Sum", "notBreaching", 1),
    # Compaction.
    "compaction is stuck, or the sweep stopped (no CompactionLag data points)":
        ("CompactionLagAlarm", OURS, "CompactionLag", "compact", "Maximum", "breaching", {"Ref": "CompactionLagThresholdSeconds"}),
    "compaction fails":
        ("CompactErrorsAlarm", "AWS/Lambda", "Errors", "CompactFunction", "Sum", "notBreaching", 1),
    "compaction is throttled":
        ("CompactThrottlesAlarm", "AWS/Lambda", "Throttles", "CompactFunction", "Sum", "notBreaching", 1),
    "compaction nears its timeout":
        ("CompactDurationAlarm", "AWS/Lambda", "Duration", "CompactFunction", "Maximum", "notBreaching", 720000),
    "a file's schema conflicts with its partition":
        ("CompactIncompatibleFilesAlarm", OURS, "IncompatibleFiles", "compact", "Sum", "notBreaching", 1),
    # Triggers of compact and catalog.
    "trigger deliveries fail after all retries":
        ("TriggerFailuresAlarm", "AWS/SQS", "NumberOfMessagesSent", "TriggerFailureQueue", "Sum", "notBreaching", 1),
}
# At least these, named in the issue and the contract.
REQUIRED = ["the mapping is disabled", "authentication to Kafka fails", "ingest errors", "the catalog fails",
            "compaction is stuck", "a batch is given up on", "trigger deliveries fail", "the watch itself does not run"]


def alarm(lid):
    assert lid in RES and RES[lid]["Type"] == "AWS::CloudWatch::Alarm", lid
    return RES[lid]["Properties"]


def watched(a):
    """(namespace, metric name, dimensions, statistic, period) of the metric an alarm reads: its own
    properties, or for an anomaly detection alarm its one MetricStat query."""
    if "Metrics" not in a:
        assert "ThresholdMetricId" not in a
        return a["Namespace"], a["MetricName"], a["Dimensions"], a["Statistic"], a["Period"]
    # CloudFormation refuses these next to Metrics.
    for prop in ("Namespace", "MetricName", "Dimensions", "Statistic", "ExtendedStatistic", "Period", "Unit"):
        assert prop not in a, prop
    (stat,) = [q["MetricStat"] for q in a["Metrics"] if "MetricStat" in q]
    m = stat["Metric"]
    return m["Namespace"], m["MetricName"], m["Dimensions"], stat["Stat"], stat["Period"]


def band(a):
    """The Band of an anomaly detection alarm: ThresholdMetricId names an ANOMALY_DETECTION_BAND of
    the alarm's metric, and both return data (the metric and the band it is compared with)."""
    assert "Threshold" not in a, "CloudFormation refuses Threshold next to ThresholdMetricId"
    queries = {q["Id"]: q for q in a["Metrics"]}
    assert len(queries) == len(a["Metrics"]) == 2, a["Metrics"]
    (metric_id,) = [i for i, q in queries.items() if "MetricStat" in q]
    threshold = queries[a["ThresholdMetricId"]]
    assert "MetricStat" not in threshold
    assert threshold["Expression"].startswith(f"ANOMALY_DETECTION_BAND({metric_id}, "), threshold["Expression"]
    assert all(q.get("ReturnData", True) for q in queries.values())
    std_devs = threshold["Expression"].removeprefix(f"ANOMALY_DETECTION_BAND({metric_id}, ").removesuffix(")")
    return Band(int(std_devs), a["ComparisonOperator"])


def model(a):
    """The AWS::CloudWatch::AnomalyDetector resources of exactly the metric and statistic an anomaly
    detection alarm reads (the model its band is drawn from)."""
    ns, name, dims, stat, _ = watched(a)
    want = {"Namespace": ns, "MetricName": name, "Dimensions": dims, "Stat": stat}
    return [k for k, r in RES.items() if r["Type"] == "AWS::CloudWatch::AnomalyDetector"
            and r["Properties"].get("SingleMetricAnomalyDetector") == want]


def dimension(a):
    (d,) = watched(a)[2]
    v = d["Value"]
    if isinstance(v, dict):
        return v.get("Ref") or v["Fn::GetAtt"][0]
    return v


@pytest.mark.parametrize("mode", sorted(TABLE))
def test_the_alarm_for_each_failure_mode(mode):
    lid, namespace, metric, dim, statistic, missing, threshold = TABLE[mode]
    a = alarm(lid)
    ns, name, _, stat, _ = watched(a)
    assert ns == namespace, (mode, ns)
    assert name == metric, mode
    assert dimension(a) == dim, mode
    assert stat == statistic, mode
    assert a["TreatMissingData"] == missing, (mode, a["TreatMissingData"])
    if isinstance(threshold, Band):
        assert band(a) == threshold, mode
        assert model(a), (mode, "no AWS::CloudWatch::AnomalyDetector of the alarm's metric and statistic")
    else:
        assert a["Threshold"] == threshold, mode
        assert a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", mode
    assert {"Ref": "AlarmTopic"} in a["AlarmActions"], mode


def test_the_table_covers_the_required_failure_modes():
    for start in REQUIRED:
        assert any(m.startswith(start) for m in TABLE), start


def test_every_alarm_is_in_the_table():
    alarms = {k for k, r in RES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms == {row[0] for row in TABLE.values()}, alarms ^ {row[0] for row in TABLE.values()}


@pytest.mark.parametrize("lid", sorted({row[0] for row in TABLE.values()}))
def test_the_runbook_has_a_row_for_every_alarm(lid):
    rows = [line for line in RUNBOOK.splitlines() if line.startswith("|") and f"`{lid}`" in line.split("|")[1]]
    assert rows, f"docs/runbook.md has no row for {lid}"


def test_the_watch_runs_at_least_twice_per_period_of_its_alarm():
    # One failed or late run must not breach the stopped-source alarm by itself.
    a = alarm("IngestSourceStoppedAlarm")
    (rule,) = [r["Properties"] for r in RES.values() if r["Type"] == "AWS::Events::Rule"
               and r["Properties"].get("ScheduleExpression") and r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["WatchFunction", "Arn"]}]
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    assert a["Period"] >= 2 * 300 and a["EvaluationPeriods"] == 1


def test_alarms_whose_metric_stops_with_the_pipeline_breach_on_silence():
    # The metrics emitted on every run of a schedule: silence means the schedule or its function stopped.
    for lid in ("IngestSourceStoppedAlarm", "CompactionLagAlarm"):
        assert alarm(lid)["TreatMissingData"] == "breaching", lid
    # OffsetLag: an idle topic may emit none; "ignore" keeps the state, so silence neither raises nor clears it.
    assert alarm("IngestOffsetLagAlarm")["TreatMissingData"] == "ignore"
