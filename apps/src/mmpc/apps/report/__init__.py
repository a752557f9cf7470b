"""The MMPCBench report: paper tables and figures plus statistics, as Markdown and one HTML page."""

from mmpc.apps.report.data import GalleryItem, MetricInfo, ReportInputs
from mmpc.apps.report.html import ReportFiles, write_report

__all__ = ["GalleryItem", "MetricInfo", "ReportFiles", "ReportInputs", "write_report"]
