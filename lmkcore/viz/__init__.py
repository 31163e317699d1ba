"""Pictures: keypoints, skeletons, learned graphs, contact sheets; the inspector lives beside them."""
from .draw import contact_sheet, show_keypoints

__all__ = ["contact_sheet", "show_keypoints"]
