"""spotify_engine: the ground floor, settings and the one error tree; imports nothing of ours.

``settings.Settings`` is read from the environment and ``.env``; ``errors`` holds every typed
error the project raises on purpose.
"""
