"""nova-sim: a Nova (OpenStack Compute API) simulator for lcake's tests. See ../README.md."""
