-------------------------------- MODULE MC_3x2 --------------------------------
(*
  Model configuration: 3 sync nodes and 2 store nodes, one client with one
  request, one term, one epoch past the initial one, and no faults.
  MC_3x2.cfg names these operators as the values of Cluster's constants, for
  TLC and Apalache.
*)
EXTENDS Cluster

\* @type: Set(Str);
MC_SyncNodes == {"n1", "n2", "n3"}
\* @type: Set(Str);
MC_StoreNodes == {"s1", "s2"}
\* @type: Set(Str);
MC_Clients == {"c1"}
MC_MaxTerm == 1
MC_MaxEpoch == 1
MC_MaxLogLen == 1
MC_MaxRequests == 1
MC_MaxCopies == 1
MC_MaxFaults == 0
\* @type: Set(Str);
MC_BUGS == {}

\* TLC only (Apalache ignores CONSTRAINT and bounds the length instead): at
\* most this many distinct messages in transit.
MC_Constraint == Cardinality(DOMAIN msgs) <= 3
===============================================================================
