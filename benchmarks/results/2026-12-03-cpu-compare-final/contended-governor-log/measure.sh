#!/bin/bash
echo -20 > /proc/$$/autogroup 2>/dev/null
cd /work/main
python3 -c "while True: pass" & busy=$!
for r in 1 2; do
GOVLOG=1 env -u OPENBLAS_CORETYPE build/plinth bench --device cpu --threads 2 --batch-sizes 32,256 --modes train --repeats 3 > /tmp/ab/cont-on-$r.txt 2>&1
env -u OPENBLAS_CORETYPE build/plinth bench --device cpu --threads 1 --batch-sizes 32,256 --modes train --repeats 3 > /tmp/ab/cont-one-$r.txt 2>&1
done
kill $busy
echo done > /tmp/ab/cont.finished
