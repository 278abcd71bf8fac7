# Replaced by the callback plugin (branch callback); include_str! needs the file.
