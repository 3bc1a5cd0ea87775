"""The development lab: network namespaces standing in for a library (``hotspotctl lab``)."""
