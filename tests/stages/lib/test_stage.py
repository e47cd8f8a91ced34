"""A stage's error line, as run_main logs it, is what the flow reads back as the cause."""

import logging

from stages.lib.stage import DATE_FORMAT, LOG_FORMAT, error_cause


def test_the_error_line_run_main_writes_is_the_one_error_cause_reads():
    formatter = logging.Formatter(LOG_FORMAT, DATE_FORMAT)
    record = logging.LogRecord("stages.train_cnn", logging.ERROR, __file__, 1, "params.yaml: bad value", None, None)
    assert error_cause(formatter.format(record)) == "params.yaml: bad value"
    info = logging.LogRecord("stages.train_cnn", logging.INFO, __file__, 1, "cnn epoch 1/2", None, None)
    assert error_cause(formatter.format(info)) is None
    assert error_cause("ERROR: failed to reproduce 'train-cnn'") is None  # DVC's own line, not a stage's
