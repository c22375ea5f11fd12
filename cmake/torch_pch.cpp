// Translation unit that builds the shared torch precompiled header (cmake/AlbionTargets.cmake).
