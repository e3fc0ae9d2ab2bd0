# Turns the option lines of `jobq-consumer --help` (the one option table,
# consumer/conf/options.c) into go-md2man definitions, so that jobq-consumer(1)
# lists exactly the options the binary has, with their variables and
# defaults. The internal --worker-role and --help are left out.
/^  -/ {
    line = substr($0, 3)
    i = index(line, "  ")               # the flag column ends at two spaces
    flag = substr(line, 1, i - 1)
    help = substr(line, i)
    sub(/^ +/, "", help)
    if (flag ~ /--worker-role|--help/) next
    n = split(flag, w, " ")
    out = "**" w[1] "**"
    if (n > 1) out = out " *" w[2] "*"
    gsub(/[][*_`\\<>]/, "\\\\&", help)  # no markdown inside the help text
    print out
    print ":   " help
    print ""
}
