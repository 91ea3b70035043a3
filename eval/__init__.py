"""Evaluation harness: seqeval scores and reports for tagged layers."""
