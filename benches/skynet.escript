#!/usr/bin/env escript
%%! +P 4194304
%% Skynet on the BEAM, the baseline of the skynet scenario: 10^Depth processes in a 10-ary
%% tree, each leaf answers its number, each inner node sums its ten children's answers.
%% Timed inside the VM (start-up and compilation excluded); `+P` lifts the process limit
%% (262,144 by default) above the million processes of depth 6. Prints one line:
%%   SKYNET_MS <median ms> SUM <sum> RUNS <ms,ms,...>
%% Usage: escript benches/skynet.escript [Depth=6] [Runs=5]
-mode(compile).

main(Args) ->
    [Depth, Runs] = [list_to_integer(A) || A <- Args ++ lists:nthtail(length(Args), ["6", "5"])],
    Size = pow10(Depth),
    run(Size),  % warm-up
    Results = [run(Size) || _ <- lists:seq(1, Runs)],
    Sums = lists:usort([S || {_, S} <- Results]),
    Expected = Size * (Size - 1) div 2,
    case Sums of
        [Expected] -> ok;
        _ -> io:format(standard_error, "wrong sum ~p, expected ~p~n", [Sums, Expected]), halt(1)
    end,
    Ms = lists:sort([T / 1000 || {T, _} <- Results]),
    Median = lists:nth((length(Ms) + 1) div 2, Ms),
    io:format("SKYNET_MS ~.3f SUM ~b RUNS ~s~n",
              [Median, Expected, lists:join(",", [io_lib:format("~.1f", [M]) || M <- Ms])]).

pow10(0) -> 1;
pow10(N) -> 10 * pow10(N - 1).

run(Size) ->
    Self = self(),
    {Micros, Sum} = timer:tc(fun() ->
        spawn(fun() -> skynet(Self, 0, Size) end),
        receive {sum, S} -> S
        after 120000 -> io:format(standard_error, "skynet stalled~n", []), halt(1)
        end
    end),
    {Micros, Sum}.

skynet(Parent, Num, 1) ->
    Parent ! {sum, Num};
skynet(Parent, Num, Size) ->
    Step = Size div 10,
    Self = self(),
    [spawn(fun() -> skynet(Self, Num + I * Step, Step) end) || I <- lists:seq(0, 9)],
    Parent ! {sum, collect(10, 0)}.

collect(0, Acc) -> Acc;
collect(N, Acc) -> receive {sum, S} -> collect(N - 1, Acc + S) end.
