"""A simulated JFrog Platform Deployment for the demo, the tests and the benchmarks.

It serves the documented endpoints with well-formed JSON of the documented
shapes, requires credentials like the real server, and its scenarios model
editions (OSS, Cloud, Enterprise), failure states and scale.
"""
