"""LTI 1.3 (issue 13): this platform as a tool that an LMS (Moodle, Canvas, Open edX) launches.

A nested app (label ``lti``) of exams, on django-lti (registrations, deployments, keys, launch records) and PyLTI1p3
(message validation, services). It links an LMS resource link to an exam, provisions users by issuer and subject,
and speaks Deep Linking, Names and Roles, Assignment and Grade Services, and LTI Proctoring Services 1.0.
"""
