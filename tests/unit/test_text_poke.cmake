# Patches code in its own text on the x86_64 backend; on the generic one it
# checks that every call says -ENOSYS (so no x86only label).
