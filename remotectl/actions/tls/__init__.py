"""X.509 certificates for Pacemaker 3.0 remote connections: the cluster CA and node certificates here
(:mod:`.local`), pushed to nodes (:mod:`.push`) and checked there (:mod:`.verify`); :mod:`.facts` is what a node
says; :mod:`.switch` switches the whole cluster to X.509 and back (`tls enable`/`disable`)."""
