"""What the segmentation admin pages show, computed apart from the ModelAdmins: the page
context of a model fit and its calibration chart, and the segment builder's data and preview."""
